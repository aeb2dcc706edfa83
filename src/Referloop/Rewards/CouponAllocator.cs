using Referloop.Storage;

namespace Referloop.Rewards;

/// <summary>A code handed to a reward, or why none could be.</summary>
public sealed record CouponAllocation(string? Code, string? FailureReason)
{
    public bool Succeeded => Code is not null;
}

/// <summary>Hands out each uploaded code exactly once; when a pool is empty, asks the merchant's create-coupon URL.</summary>
public sealed class CouponAllocator(ReferloopDb db, IHttpClientFactory httpClients, TimeProvider clock)
{
    // CONTRACT STUB — replaced by the coupon-pool implementation; the engine calls exactly this signature.
    public Task<CouponAllocation> AllocateAsync(string campaignId, string pool, string rewardId, string participantId,
        CancellationToken ct)
    {
        _ = (db, httpClients, clock);
        return Task.FromResult(new CouponAllocation(null, $"coupon pool '{pool}' is empty"));
    }
}
