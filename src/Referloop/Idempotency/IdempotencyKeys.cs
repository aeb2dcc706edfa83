using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.Idempotency;

/// <summary>Marks a route that answers a retried key itself (the event engine replays with <c>duplicate: true</c>).</summary>
public sealed class AnswersRetriesItself;

/// <summary>
/// <c>Idempotency-Key</c> on every <c>POST</c> under <c>/api/v1</c> (draft-ietf-httpapi-idempotency-key-header):
/// the same key with the same request replays the first answer with <c>Idempotent-Replayed: true</c>; with another
/// request it is refused with <c>422</c>; while the first is still running, <c>409</c>. Keys belong to the caller (the
/// admin key, or the publishable key's campaign) and expire after <c>Idempotency:RetentionHours</c>.
/// </summary>
/// <remarks>
/// The answer is stored right after the route has answered, not in the route's own transaction: a crash between the
/// route's commit and this store leaves the key claimed but unanswered, and a retry after
/// <see cref="AbandonedAfter"/> runs the route again. The routes' own natural keys (one participant per e-mail, one
/// event per order id, status changes that only happen once) absorb most of such a rerun.
/// </remarks>
public sealed class IdempotencyKeys(IServiceScopeFactory scopes, TimeProvider clock, IDataProtectionProvider dataProtection,
    IConfiguration configuration, IProblemDetailsService problems)
{
    public const string Header = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    public const int MaxKeyLength = 200;

    /// <summary>A claim without an answer this old is taken to be from a request that died; a retry may run again.</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(5);

    private readonly IDataProtector _protector = dataProtection.CreateProtector("Referloop.Idempotency.ResponseBody");

    public TimeSpan Retention => TimeSpan.FromHours(Math.Max(1, configuration.GetValue("Idempotency:RetentionHours", 24)));

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (!HttpMethods.IsPost(http.Request.Method) || !http.Request.Path.StartsWithSegments("/api/v1")
            || !http.Request.Headers.TryGetValue(Header, out var values) || http.GetEndpoint() is not { } endpoint)
        {
            await next(http);
            return;
        }
        var key = values.Count == 1 ? values[0]?.Trim() : null;
        if (string.IsNullOrEmpty(key) || key.Length > MaxKeyLength)
        {
            await Problem(http, StatusCodes.Status400BadRequest, "The Idempotency-Key is not valid.",
                $"Send one {Header} header of 1–{MaxKeyLength} characters, such as a UUID.",
                $"must be one value of 1–{MaxKeyLength} characters.");
            return;
        }

        http.Request.EnableBuffering();
        var body = new MemoryStream();
        await http.Request.Body.CopyToAsync(body, http.RequestAborted);
        http.Request.Body.Position = 0;

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var owner = await ScopeAsync(http, db, body.ToArray());
        if (owner is null)
        {
            await next(http); // neither an admin key nor a publishable key: the route refuses the caller
            return;
        }

        var hash = Hash(http.Request, body.ToArray());
        var answeredByRoute = endpoint.Metadata.GetMetadata<AnswersRetriesItself>() is not null;
        var claim = await ClaimAsync(db, owner, key, hash, http.Request, answeredByRoute, http.RequestAborted);
        if (claim is not null)
        {
            await AnswerExistingAsync(http, next, claim, key, hash);
            return;
        }
        if (answeredByRoute)
        {
            await next(http);
            return;
        }
        await RunAndStoreAsync(http, next, db, owner, key);
    }

    /// <summary>Claims the key for this request; answers the record already holding it, or null when this request holds it now.</summary>
    private async Task<IdempotencyRecord?> ClaimAsync(ReferloopDb db, string owner, string key, string hash, HttpRequest request,
        bool answeredByRoute, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var now = clock.GetUtcNow();
            var existing = await db.IdempotencyKeys.AsNoTracking().FirstOrDefaultAsync(r => r.Scope == owner && r.Key == key, ct);
            if (existing is not null && existing.CreatedAt > now - Retention)
            {
                if (existing.StatusCode is null && !existing.AnsweredByRoute && existing.RequestHash == hash
                    && existing.CreatedAt <= now - AbandonedAfter)
                {
                    // Take over an abandoned claim, conditionally, so that only one retry runs the route again.
                    var taken = await db.IdempotencyKeys
                        .Where(r => r.Scope == owner && r.Key == key && r.StatusCode == null && r.CreatedAt == existing.CreatedAt)
                        .ExecuteUpdateAsync(set => set.SetProperty(r => r.CreatedAt, now), ct);
                    if (taken == 1)
                    {
                        return null;
                    }
                    continue;
                }
                return existing;
            }
            if (existing is not null)
            {
                await db.IdempotencyKeys.Where(r => r.Scope == owner && r.Key == key && r.CreatedAt == existing.CreatedAt)
                    .ExecuteDeleteAsync(ct);
            }
            db.IdempotencyKeys.Add(new IdempotencyRecord
            {
                Scope = owner,
                Key = key,
                RequestHash = hash,
                Method = request.Method,
                Path = Truncate(request.Path.Value, 500) ?? "",
                AnsweredByRoute = answeredByRoute,
                CreatedAt = now,
            });
            try
            {
                await db.SaveChangesAsync(ct);
                return null;
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // Another request with the same key claimed it first: answer as that one decides.
                db.ChangeTracker.Clear();
            }
        }
    }

    private async Task AnswerExistingAsync(HttpContext http, RequestDelegate next, IdempotencyRecord existing, string key, string hash)
    {
        if (existing.RequestHash != hash)
        {
            await Problem(http, StatusCodes.Status422UnprocessableEntity, "The Idempotency-Key was used for another request.",
                $"The key '{key}' was first used with {existing.Method} {existing.Path} and a different body. A key stands for one " +
                $"request for {Retention.TotalHours:0} hours; send a new key for a new request.",
                "must not be reused with a different method, path or body.");
            return;
        }
        if (existing.AnsweredByRoute)
        {
            await next(http);
            return;
        }
        if (existing.StatusCode is not { } status)
        {
            http.Response.Headers.RetryAfter = "1";
            await Problem(http, StatusCodes.Status409Conflict, "A request with this Idempotency-Key is still being processed.",
                $"The first request with the key '{key}' has not been answered yet; retry in a moment to get its answer.",
                "is in use by a request still being processed.");
            return;
        }
        http.Response.StatusCode = status;
        http.Response.Headers[ReplayedHeader] = "true";
        if (existing.ContentType is not null)
        {
            http.Response.ContentType = existing.ContentType;
        }
        if (existing.Location is not null)
        {
            http.Response.Headers.Location = existing.Location;
        }
        if (existing.ResponseBody is not null)
        {
            await http.Response.WriteAsync(_protector.Unprotect(existing.ResponseBody), Encoding.UTF8, http.RequestAborted);
        }
    }

    private async Task RunAndStoreAsync(HttpContext http, RequestDelegate next, ReferloopDb db, string owner, string key)
    {
        var original = http.Response.Body;
        using var buffer = new MemoryStream();
        http.Response.Body = buffer;
        int status;
        try
        {
            await next(http);
            status = http.Response.StatusCode;
        }
        catch
        {
            http.Response.Body = original;
            await Release(db, owner, key);
            throw;
        }
        finally
        {
            http.Response.Body = original;
        }

        if (status >= 500 || status == StatusCodes.Status429TooManyRequests)
        {
            // Not an answer to keep: a retry of the same request should run again.
            await Release(db, owner, key);
        }
        else
        {
            var text = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            var now = clock.GetUtcNow();
            string? location = http.Response.Headers.Location;
            string? contentType = http.Response.ContentType;
            var protectedBody = buffer.Length == 0 ? null : _protector.Protect(text);
            await db.IdempotencyKeys.Where(r => r.Scope == owner && r.Key == key).ExecuteUpdateAsync(set => set
                .SetProperty(r => r.StatusCode, status)
                .SetProperty(r => r.ContentType, Truncate(contentType, 200))
                .SetProperty(r => r.Location, Truncate(location, 2048))
                .SetProperty(r => r.ResponseBody, protectedBody)
                .SetProperty(r => r.CompletedAt, now), CancellationToken.None);
        }
        buffer.Position = 0;
        await buffer.CopyToAsync(original, http.RequestAborted);
    }

    private static Task Release(ReferloopDb db, string owner, string key) =>
        db.IdempotencyKeys.Where(r => r.Scope == owner && r.Key == key && r.StatusCode == null).ExecuteDeleteAsync(CancellationToken.None);

    /// <summary>Whose key this is: the admin key's id, else the campaign of a publishable key (header or body field).</summary>
    private static async Task<string?> ScopeAsync(HttpContext http, ReferloopDb db, byte[] body)
    {
        if (http.User.Identity?.AuthenticationType == AdminAuthentication.SchemeName
            && http.User.FindFirstValue(ClaimTypes.NameIdentifier) is { } keyId)
        {
            return "key:" + keyId;
        }
        var publishable = http.Request.Headers[EventsApi.KeyHeader].FirstOrDefault() ?? PublishableKeyInBody(body);
        if (string.IsNullOrWhiteSpace(publishable) || publishable.Length > 100)
        {
            return null;
        }
        var campaign = await db.Campaigns.AsNoTracking().Where(c => c.PublishableKey == publishable)
            .Select(c => c.Id).FirstOrDefaultAsync(http.RequestAborted);
        return campaign is null ? null : "campaign:" + campaign;
    }

    private static string? PublishableKeyInBody(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("publishableKey", out var value) && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Hash(HttpRequest request, byte[] body)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{request.Method} {request.Path}{request.QueryString}\n"));
        sha.AppendData(body);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private Task Problem(HttpContext http, int status, string title, string detail, string rule)
    {
        http.Response.StatusCode = status;
        return problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]> { [Header] = [rule] })
            {
                Status = status,
                Title = title,
                Detail = detail,
            },
        }).AsTask();
    }

    private static string? Truncate(string? value, int max) => value is null || value.Length <= max ? value : value[..max];
}

/// <summary>Deletes keys older than <c>Idempotency:RetentionHours</c>, every <c>Idempotency:SweepIntervalMinutes</c> (60).</summary>
internal sealed class IdempotencySweep(IServiceScopeFactory scopes, TimeProvider clock, IdempotencyKeys keys,
    IConfiguration configuration, ILogger<IdempotencySweep> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (SweepInterval.Read(configuration, "Idempotency:SweepIntervalMinutes") is not { } interval)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, clock, stoppingToken);
                await PurgeAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogError(exception, "Purging expired idempotency keys failed; trying again in {Interval}.", interval);
            }
        }
    }

    /// <summary>Deletes the expired keys; returns how many.</summary>
    public async Task<int> PurgeAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var cutoff = clock.GetUtcNow() - keys.Retention;
        return await db.IdempotencyKeys.Where(r => r.CreatedAt <= cutoff).ExecuteDeleteAsync(ct);
    }
}

public static class IdempotencySetup
{
    public static IServiceCollection AddIdempotencyKeys(this IServiceCollection services)
    {
        services.AddSingleton<IdempotencyKeys>();
        services.AddSingleton<IdempotencySweep>();
        services.AddHostedService(provider => provider.GetRequiredService<IdempotencySweep>());
        return services;
    }

    public static IApplicationBuilder UseIdempotencyKeys(this IApplicationBuilder app)
    {
        var keys = app.ApplicationServices.GetRequiredService<IdempotencyKeys>();
        return app.Use((http, next) => keys.InvokeAsync(http, next));
    }
}
