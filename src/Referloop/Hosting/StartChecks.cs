using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Npgsql;
using Referloop.Storage;

namespace Referloop.Hosting;

/// <summary>
/// What is checked before the server starts. A mistake in the settings stops it with every problem named and exit
/// code 1, rather than a stack trace from deep inside the first component that trips over it, or a server that runs
/// and misbehaves quietly (a malformed <c>PublicUrl</c> in every share link).
/// </summary>
internal static class StartChecks
{
    public const int FailureExitCode = 1;

    public static List<string> Problems(IConfiguration configuration, IHostEnvironment environment, string? proxiesProblem)
    {
        var problems = new List<string>();
        CheckDatabase(configuration, problems);
        if (Http.PublicUrls.Problem(configuration, environment) is { } publicUrl)
        {
            problems.Add(publicUrl);
        }
        if (proxiesProblem is not null)
        {
            problems.Add(proxiesProblem);
        }
        CheckUrl(configuration, "OTEL_EXPORTER_OTLP_ENDPOINT", problems);
        CheckListenUrls(configuration, problems);
        foreach (var flag in new[] { "Metrics:Prometheus", "Http:TrustForwardedHeaders", "SocialProof:GeoIp" })
        {
            if (configuration[flag] is { Length: > 0 } value && !bool.TryParse(value, out _))
            {
                problems.Add($"{flag} is '{value}'; use true or false.");
            }
        }
        CheckDataProtectionCertificate(configuration, problems);
        problems.AddRange(Email.EmailOptions.Problems(configuration));
        problems.AddRange(Http.PublicLimits.Problems(configuration));
        if (configuration[Security.AdminKeys.EnvironmentVariable]?.Trim() is { Length: > 0 and < Security.AdminKeys.MinimumLength })
        {
            problems.Add($"{Security.AdminKeys.EnvironmentVariable} must be at least {Security.AdminKeys.MinimumLength} characters long.");
        }
        return problems;
    }

    /// <summary>Writes the problems to standard error (there is no logger yet) and gives the exit code.</summary>
    public static int Refuse(List<string> problems)
    {
        Console.Error.WriteLine("Referloop cannot start; fix these settings (appsettings.json, Referloop__… environment variables or arguments):");
        foreach (var problem in problems)
        {
            Console.Error.WriteLine($"  - {problem}");
        }
        return FailureExitCode;
    }

    /// <summary>
    /// Applies migrations; false, with one critical log line saying which database could not be reached and why,
    /// when the database cannot be opened. The orchestrator (systemd, Docker, Kubernetes) restarts the server.
    /// </summary>
    public static async Task<bool> PrepareDatabaseAsync(WebApplication app)
    {
        try
        {
            await app.Services.MigrateDatabaseAsync();
            return true;
        }
        catch (Exception e)
        {
            app.Logger.LogCritical("Referloop cannot start: the database {Database} (Database:Provider '{Provider}', " +
                "ConnectionStrings:Referloop) cannot be opened: {Reason}", Describe(app.Configuration),
                StorageSetup.ProviderName(app.Configuration), e.GetBaseException().Message);
            app.Logger.LogDebug(e, "Opening the database failed");
            return false;
        }
    }

    /// <summary>The database a connection string names, without its password.</summary>
    private static string Describe(IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString(StorageSetup.ConnectionStringName);
        if (StorageSetup.ProviderName(configuration) == "sqlite")
        {
            var file = string.IsNullOrWhiteSpace(connectionString) ? "data/referloop.db" : new SqliteConnectionStringBuilder(connectionString).DataSource;
            return Path.GetFullPath(file);
        }
        var postgres = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{postgres.Database ?? postgres.Username} on {postgres.Host}:{postgres.Port}";
    }

    private static void CheckDatabase(IConfiguration configuration, List<string> problems)
    {
        var provider = StorageSetup.ProviderName(configuration);
        var connectionString = configuration.GetConnectionString(StorageSetup.ConnectionStringName);
        if (provider is not ("sqlite" or "postgres" or "postgresql"))
        {
            problems.Add($"Database:Provider is '{configuration["Database:Provider"]}'; use 'sqlite' (the default) or 'postgres'.");
            return;
        }
        if (provider != "sqlite" && string.IsNullOrWhiteSpace(connectionString))
        {
            problems.Add("Database:Provider is 'postgres' but ConnectionStrings:Referloop is empty; set it, e.g. " +
                "Referloop__ConnectionStrings__Referloop=\"Host=db;Database=referloop;Username=referloop;Password=…\".");
            return;
        }
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return;
        }
        try
        {
            _ = provider == "sqlite" ? new SqliteConnectionStringBuilder(connectionString).DataSource
                : new NpgsqlConnectionStringBuilder(connectionString).Host;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            problems.Add($"ConnectionStrings:Referloop is not a valid {provider} connection string: {e.Message}");
        }
    }

    private static void CheckUrl(IConfiguration configuration, string key, List<string> problems)
    {
        if (configuration[key] is { Length: > 0 } value && !IsHttpUrl(value))
        {
            problems.Add($"{key} is '{value}'; it must be an absolute http or https URL, e.g. https://refer.shop.example.");
        }
    }

    /// <summary><c>Urls</c>, <c>ASPNETCORE_URLS</c> or <c>--urls</c>: a list separated by ';', with + or * for every address.</summary>
    private static void CheckListenUrls(IConfiguration configuration, List<string> problems)
    {
        if (configuration["urls"] is not { Length: > 0 } urls)
        {
            return;
        }
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!IsHttpUrl(url.Replace("://+", "://any", StringComparison.Ordinal).Replace("://*", "://any", StringComparison.Ordinal)))
            {
                problems.Add($"Urls (or ASPNETCORE_URLS, --urls) contains '{url}'; give addresses like http://0.0.0.0:8080 or http://+:8080, separated by ';'.");
            }
        }
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && !string.IsNullOrEmpty(uri.Host);

    private static void CheckDataProtectionCertificate(IConfiguration configuration, List<string> problems)
    {
        if (configuration[DataProtectionSetup.CertificatePathSetting] is not { Length: > 0 } path)
        {
            return;
        }
        try
        {
            using var certificate = DataProtectionSetup.LoadCertificate(path, configuration[DataProtectionSetup.CertificatePasswordSetting]);
            if (!certificate.HasPrivateKey)
            {
                problems.Add($"{DataProtectionSetup.CertificatePathSetting} '{path}' has no private key; the key ring could be encrypted but never read back.");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            problems.Add($"{DataProtectionSetup.CertificatePathSetting} '{path}' cannot be read as a PKCS#12 (.pfx) file with " +
                $"{DataProtectionSetup.CertificatePasswordSetting}: {e.Message}");
        }
    }
}
