using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Security;

public static class AdminKeys
{
    public const string EnvironmentVariable = "REFERLOOP_ADMIN_KEY";

    /// <summary>How long a key set through <see cref="EnvironmentVariable"/> must be at least.</summary>
    public const int MinimumLength = 20;

    public static (ApiKey Key, string Token) New(string name, DateTimeOffset now, string scope = ApiKeyScope.Full)
    {
        var token = Secrets.NewToken("rl_admin");
        return (FromToken(name, token, now, scope), token);
    }

    private static ApiKey FromToken(string name, string token, DateTimeOffset now, string scope = ApiKeyScope.Full) => new()
    {
        Id = Ids.New("key"),
        Name = name,
        Prefix = token[..Math.Min(12, token.Length)],
        Hash = Secrets.Hash(token),
        Scope = scope,
        CreatedAt = now,
    };

    /// <summary>
    /// Makes sure an operator can get in: the key in <c>REFERLOOP_ADMIN_KEY</c> is registered if it is not yet
    /// (a revoked one stays revoked); with no such variable and no key at all, one is generated and printed once.
    /// </summary>
    public static async Task EnsureAdminKeyAsync(this IServiceProvider services, CancellationToken ct = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var configuration = scope.ServiceProvider.GetRequiredService<IConfiguration>();
        var clock = scope.ServiceProvider.GetRequiredService<TimeProvider>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Referloop.AdminKeys");

        var configured = configuration[EnvironmentVariable]?.Trim();
        if (!string.IsNullOrEmpty(configured))
        {
            if (configured.Length < MinimumLength)
            {
                throw new InvalidOperationException($"{EnvironmentVariable} must be at least {MinimumLength} characters long.");
            }
            var hash = Secrets.Hash(configured);
            if (!await db.ApiKeys.AnyAsync(k => k.Hash == hash, ct))
            {
                db.ApiKeys.Add(FromToken("from " + EnvironmentVariable, configured, clock.GetUtcNow()));
                try
                {
                    await db.SaveChangesAsync(ct);
                    logger.LogInformation("Registered the admin key from {Variable}.", EnvironmentVariable);
                }
                catch (DbUpdateException e) when (UniqueViolation.Is(e))
                {
                    // Another instance on the same database, started with the same key, registered it after the
                    // check: the key is there, which is all this start needs.
                }
            }
            return;
        }

        if (await db.ApiKeys.AnyAsync(ct))
        {
            return;
        }
        var (key, token) = New("first key", clock.GetUtcNow());
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        // Printed to the console, not only logged: this is the one time the key can be seen.
        Console.WriteLine();
        Console.WriteLine("  Referloop generated the first admin API key. It is shown only this once; keep it safe:");
        Console.WriteLine();
        Console.WriteLine($"      {token}");
        Console.WriteLine();
        Console.WriteLine("  Use it as 'Authorization: Bearer <key>'. Set REFERLOOP_ADMIN_KEY to choose your own instead.");
        Console.WriteLine();
    }
}
