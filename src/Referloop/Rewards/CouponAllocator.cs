using System.Data.Common;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Referloop.Outbound;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Rewards;

/// <summary>A code handed to a reward, or why none could be, or that only the pool's create-coupon URL can supply it.</summary>
/// <param name="Retryable">A failed create-coupon call that may succeed later: a timeout, no connection, 408, 429 or 5xx.</param>
public sealed record CouponAllocation(string? Code, string? FailureReason, bool AwaitsCreateCouponUrl = false, bool Retryable = false)
{
    public bool Succeeded => Code is not null;
}

/// <summary>The body POSTed to a pool's create-coupon URL.</summary>
public sealed record CreateCouponRequest(string CampaignId, string Pool, string RewardId, string ParticipantId);

/// <summary>Hands out each uploaded code exactly once; when a pool is empty, asks the merchant's create-coupon URL.</summary>
/// <remarks>
/// Writes go straight to the database (single statements), never through the change tracker: the context is the
/// caller's, and a <c>SaveChanges</c> here would commit the caller's half-made changes with it. When the caller has
/// a transaction open, the writes join it. The create-coupon URL is never called with a transaction open: a write
/// transaction (and on SQLite the only writer) must not wait for a merchant's server.
/// </remarks>
public sealed class CouponAllocator(ReferloopDb db, IHttpClientFactory httpClients, TimeProvider clock)
{
    public const string HttpClientName = "create-coupon";
    public static readonly TimeSpan CreateCouponTimeout = TimeSpan.FromSeconds(10);
    private const int MaxResponseBytes = 64 * 1024;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record Target(string Id, string? CreateCouponUrl, string Secret, string? PreviousSecret,
        DateTimeOffset? PreviousSecretExpiresAt);

    /// <summary>
    /// The code for <paramref name="rewardId"/>: the one it already has (so asking twice is safe), else the oldest free
    /// uploaded code of the pool (one conditional UPDATE), else a code from the pool's create-coupon URL. Never throws
    /// for a business reason: a failure comes back as <see cref="CouponAllocation.FailureReason"/>, worded for the
    /// reward's blocking reason. Refuses to run inside a transaction when it would call the URL.
    /// </summary>
    public async Task<CouponAllocation> AllocateAsync(string campaignId, string pool, string rewardId, string participantId,
        CancellationToken ct)
    {
        var (allocation, target) = await ClaimAsync(campaignId, pool, rewardId, participantId, ct);
        if (!allocation.AwaitsCreateCouponUrl)
        {
            return allocation;
        }
        if (db.Database.CurrentTransaction is not null)
        {
            throw new InvalidOperationException(
                $"The create-coupon URL is not called inside a transaction: leave the call to {nameof(CouponRequests)}.");
        }
        var secrets = CouponPool.SigningSecrets(target!.Secret, target.PreviousSecret, target.PreviousSecretExpiresAt, clock.GetUtcNow());
        return await CreateAsync(campaignId, pool, target.Id, target.CreateCouponUrl!, secrets, rewardId, participantId, ct);
    }

    private async Task<(CouponAllocation Allocation, Target? Target)> ClaimAsync(string campaignId, string pool, string rewardId,
        string participantId, CancellationToken ct)
    {
        if (await CodeOfRewardAsync(rewardId, ct) is { } existing)
        {
            return (new CouponAllocation(existing, null), null);
        }

        var target = await db.CouponPools.AsNoTracking()
            .Where(p => p.CampaignId == campaignId && p.Name == pool)
            .Select(p => new Target(p.Id, p.CreateCouponUrl, p.Secret, p.PreviousSecret, p.PreviousSecretExpiresAt))
            .FirstOrDefaultAsync(ct);
        if (target is null)
        {
            return (Failed($"coupon pool '{pool}' does not exist: upload codes to it or give it a create-coupon URL"), null);
        }

        var (claimed, held) = await ClaimUploadedAsync(target.Id, rewardId, participantId, ct);
        if (claimed is not null)
        {
            return (new CouponAllocation(claimed, null), target);
        }
        if (held && target.CreateCouponUrl is null)
        {
            // Other transactions hold the free codes they are handing out: whatever they leave is taken on a later try.
            return (Failed($"coupon pool '{pool}' has free codes that other transactions were still handing out", retryable: true), target);
        }
        if (target.CreateCouponUrl is null)
        {
            return (Failed($"coupon pool '{pool}' is empty"), target);
        }
        return (new CouponAllocation(null, null, AwaitsCreateCouponUrl: true), target);
    }

    private static CouponAllocation Failed(string reason, bool retryable = false) => new(null, reason, Retryable: retryable);

    private Task<string?> CodeOfRewardAsync(string rewardId, CancellationToken ct) =>
        db.Coupons.AsNoTracking().Where(c => c.AllocatedToRewardId == rewardId).Select(c => c.Code).FirstOrDefaultAsync(ct);

    /// <summary>
    /// One conditional UPDATE claims the oldest free code. On PostgreSQL <c>FOR UPDATE SKIP LOCKED</c> lets concurrent
    /// claims (from any number of instances) each take a different row instead of queueing on the same one; SQLite
    /// runs one writer at a time, so the statement alone is atomic there.
    /// </summary>
    private async Task<(string? Code, bool Held)> ClaimUploadedAsync(string poolId, string rewardId, string participantId,
        CancellationToken ct)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var now = UtcTicksConverter.SqlValue(db, clock.GetUtcNow());
            var claimed = await ExecuteGuardedAsync(() => !db.OnSqlite
                ? db.Database.ExecuteSqlAsync($"""
                    UPDATE coupons SET "AllocatedToRewardId" = {rewardId}, "AllocatedToParticipantId" = {participantId}, "AllocatedAt" = {now}
                    WHERE "Id" = (SELECT "Id" FROM coupons WHERE "PoolId" = {poolId} AND "AllocatedToRewardId" IS NULL
                                  ORDER BY "Id" LIMIT 1 FOR UPDATE SKIP LOCKED)
                    """, ct)
                : db.Database.ExecuteSqlAsync($"""
                    UPDATE coupons SET "AllocatedToRewardId" = {rewardId}, "AllocatedToParticipantId" = {participantId}, "AllocatedAt" = {now}
                    WHERE "Id" = (SELECT "Id" FROM coupons WHERE "PoolId" = {poolId} AND "AllocatedToRewardId" IS NULL
                                  ORDER BY "Id" LIMIT 1)
                      AND "AllocatedToRewardId" IS NULL
                    """, ct), ct);
            if (claimed is not 0)
            {
                // 1: ours. null: the unique index said this reward already holds a code (a concurrent call won).
                return (await CodeOfRewardAsync(rewardId, ct), false);
            }
            // Nothing claimed: the pool is empty, or every free row was locked by claims that may yet roll back.
            var anyFree = await db.Coupons.AsNoTracking().AnyAsync(c => c.PoolId == poolId && c.AllocatedToRewardId == null, ct);
            if (!anyFree)
            {
                return (null, false);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(20 * (attempt + 1)), ct);
        }
        return (null, true);
    }

    /// <summary>Asks the create-coupon URL, signed with every secret in use (both during a rotation's overlap).</summary>
    private async Task<CouponAllocation> CreateAsync(string campaignId, string pool, string poolId, string url, IEnumerable<string> secrets,
        string rewardId, string participantId, CancellationToken ct)
    {
        var prefix = $"coupon pool '{pool}' is empty and the create-coupon URL";
        var body = JsonSerializer.Serialize(new CreateCouponRequest(campaignId, pool, rewardId, participantId), Json);
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        WebhookSignature.Apply(request, secrets, Ids.New("msg"), clock.GetUtcNow(), body);

        string? code;
        // The client's own timeout ends with the headers: this one also bounds reading the body.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(CreateCouponTimeout);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName)
                .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                var status = (int)response.StatusCode;
                var redirect = status is >= 300 and < 400 ? " (redirects are not followed)" : "";
                return Failed($"{prefix} answered {status}{redirect}", retryable: status is >= 500 or 408 or 429);
            }
            code = await ReadCodeAsync(response, timeout.Token);
            if (code is null)
            {
                return Failed($"{prefix} answered {(int)response.StatusCode} without a usable code " +
                    """(expected JSON {"code": "…"} with 1–100 printable characters)""");
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Failed($"{prefix} did not answer within {CreateCouponTimeout.TotalSeconds:0} s", retryable: true);
        }
        catch (IOException error)
        {
            // The answer broke off while its body was read.
            return Failed($"{prefix} answered, then broke off: {error.Message}", retryable: true);
        }
        catch (HttpRequestException error)
        {
            // An address the network guard refuses stays refused: asking again would change nothing.
            var refused = error is ForbiddenAddressException || error.InnerException is ForbiddenAddressException;
            return Failed($"{prefix} could not be reached: {error.Message}", retryable: !refused);
        }

        var now = UtcTicksConverter.SqlValue(db, clock.GetUtcNow());
        var id = Ids.New("cpn");
        var inserted = await ExecuteGuardedAsync(() => db.Database.ExecuteSqlAsync($"""
            INSERT INTO coupons ("Id", "PoolId", "Code", "Source", "AllocatedToRewardId", "AllocatedToParticipantId", "AllocatedAt", "CreatedAt")
            VALUES ({id}, {poolId}, {code}, {CouponSource.CreateCouponUrl}, {rewardId}, {participantId}, {now}, {now})
            """, ct), ct);
        if (inserted is null)
        {
            if (await CodeOfRewardAsync(rewardId, ct) is { } concurrent)
            {
                return new CouponAllocation(concurrent, null);
            }
            return Failed($"{prefix} answered the code '{code}', which the pool already holds");
        }
        return new CouponAllocation(code, null);
    }

    private static async Task<string?> ReadCodeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[MaxResponseBytes];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), ct)) > 0)
        {
            length += read;
        }
        try
        {
            using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("code", out var element)
                && element.ValueKind == JsonValueKind.String
                && CouponCodes.Clean(element.GetString()) is { } code)
            {
                return code;
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    /// <summary>
    /// Runs one statement; a unique-index violation comes back as null instead of an exception. Inside the caller's
    /// transaction the statement runs under a savepoint, because on PostgreSQL a failed statement would otherwise
    /// poison the whole transaction.
    /// </summary>
    private async Task<int?> ExecuteGuardedAsync(Func<Task<int>> statement, CancellationToken ct)
    {
        var transaction = db.Database.CurrentTransaction;
        if (transaction is not null)
        {
            await transaction.CreateSavepointAsync("coupon", ct);
        }
        try
        {
            var rows = await statement();
            if (transaction is not null)
            {
                await transaction.ReleaseSavepointAsync("coupon", ct);
            }
            return rows;
        }
        catch (DbException error) when (UniqueViolation.Is(error))
        {
            if (transaction is not null)
            {
                await transaction.RollbackToSavepointAsync("coupon", ct);
            }
            return null;
        }
    }
}
