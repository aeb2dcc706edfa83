using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Rewards;

/// <summary>
/// Asks coupon pools' create-coupon URLs for the codes of rewards awaiting one (<see cref="PendingReasons.AwaitingCoupon"/>),
/// outside any transaction, then completes each reward in a short transaction of its own: issued or approved with its
/// code, exactly as the engine would have released it, or blocked with the reason.
/// <para>
/// One per instance, and several instances may share a database: a reward is taken with a conditional UPDATE that
/// moves its <see cref="Reward.CouponDueAt"/> past the call's timeout (a lease), so only one instance asks at a time,
/// and a reward whose instance died is taken again once the lease runs out. The request carries the reward id; a
/// crash between the merchant's answer and the commit asks again, and the merchant answers the same code.
/// </para>
/// <para>
/// Woken by the engine once a unit of work that left a reward awaiting a coupon has committed; a periodic sweep
/// (<c>Rewards:CouponSweepSeconds</c>) picks up retries and what a crash left behind. A call that may succeed later
/// (timeout, no connection, 408, 429, 5xx) is tried up to <c>Rewards:CreateCouponAttempts</c> times, 30 s, 2 min,
/// 8 min … apart; any other failure blocks the reward at once.
/// </para>
/// </summary>
public sealed class CouponRequests(IServiceScopeFactory scopes, TimeProvider clock, OutboxSignal outbox, IConfiguration configuration,
    ILogger<CouponRequests> logger) : BackgroundService
{
    /// <summary>Longer than the call can take (<see cref="CouponAllocator.CreateCouponTimeout"/>), with room to store its answer.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);

    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(30);
    private const int Batch = 100;
    private const int Parallel = 8;

    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
    });

    private int Attempts => Math.Max(1, configuration.GetValue("Rewards:CreateCouponAttempts", 4));

    /// <summary>Something new awaits a coupon: look now rather than at the next sweep.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>When the next attempt is due after <paramref name="attempts"/> failed ones: 30 s, 2 min, 8 min, …</summary>
    public static TimeSpan Backoff(int attempts) => FirstRetry * Math.Pow(4, Math.Clamp(attempts - 1, 0, 6));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var sweep = TimeSpan.FromSeconds(Math.Max(1, configuration.GetValue("Rewards:CouponSweepSeconds", 30)));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogError(exception, "Asking create-coupon URLs failed; trying again in {Interval}.", sweep);
            }
            catch (Exception)
            {
                // Stopping: a reward taken but not finished is taken again once its lease runs out.
                return;
            }
            try
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                await Task.WhenAny(_wake.Reader.WaitToReadAsync(wait.Token).AsTask(), Task.Delay(sweep, clock, wait.Token));
                await wait.CancelAsync();
                _wake.Reader.TryRead(out _);
                stoppingToken.ThrowIfCancellationRequested();
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Handles every reward whose coupon request is due now; returns how many this instance took.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var taken = 0;
        while (true)
        {
            List<string> due;
            await using (var scope = scopes.CreateAsyncScope())
            {
                var now = clock.GetUtcNow();
                due = await scope.ServiceProvider.GetRequiredService<ReferloopDb>().Rewards.AsNoTracking()
                    .Where(r => r.CouponDueAt != null && r.CouponDueAt <= now && r.PendingReason == PendingReasons.AwaitingCoupon)
                    .OrderBy(r => r.CouponDueAt)
                    .Select(r => r.Id)
                    .Take(Batch)
                    .ToListAsync(ct);
            }
            var batch = 0;
            // In parallel, so that one slow merchant does not hold up the others' rewards for its whole timeout.
            await System.Threading.Tasks.Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = Parallel, CancellationToken = ct },
                async (id, token) =>
                {
                    try
                    {
                        if (await RequestAsync(id, token))
                        {
                            Interlocked.Increment(ref batch);
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
                    {
                        // Alone: the others go on. The reward is asked for again when its lease runs out.
                        logger.LogError(e, "Reward {Reward}: its coupon request failed", id);
                    }
                });
            taken += batch;
            if (due.Count < Batch || batch == 0)
            {
                return taken;
            }
        }
    }

    /// <summary>Takes the reward (unless another instance has it), asks for its code and completes it; false when not taken.</summary>
    private async Task<bool> RequestAsync(string rewardId, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var now = clock.GetUtcNow();
        var leased = now + Lease;
        var taken = await db.Rewards
            .Where(r => r.Id == rewardId && r.Status == RewardStatus.Pending && r.PendingReason == PendingReasons.AwaitingCoupon
                && r.CouponDueAt != null && r.CouponDueAt <= now)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.CouponDueAt, leased).SetProperty(r => r.CouponAttempts, r => r.CouponAttempts + 1), ct);
        if (taken == 0)
        {
            return false;
        }
        var reward = await db.Rewards.AsNoTracking().FirstAsync(r => r.Id == rewardId, ct);

        // No transaction is open here: an uploaded code (uploaded since) is claimed, else the merchant is asked.
        var allocation = await scope.ServiceProvider.GetRequiredService<CouponAllocator>()
            .AllocateAsync(reward.CampaignId, reward.Incentive.Pool!, reward.Id, reward.ParticipantId, ct);

        if (allocation is { Succeeded: false, Retryable: true } && reward.CouponAttempts < Attempts)
        {
            var next = clock.GetUtcNow() + Backoff(reward.CouponAttempts);
            await db.Rewards.Where(r => r.Id == rewardId && r.PendingReason == PendingReasons.AwaitingCoupon
                    && r.CouponAttempts == reward.CouponAttempts)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.CouponDueAt, next), ct);
            logger.LogWarning("Reward {Reward}: {Reason}; asking again at {Next} (attempt {Attempt} of {Attempts}).",
                rewardId, allocation.FailureReason, next, reward.CouponAttempts, Attempts);
            return true;
        }
        await using (var transaction = await db.Database.BeginTransactionAsync(ct))
        {
            await CompleteAsync(db, reward.ReferralId, rewardId, allocation, ct);
            await transaction.CommitAsync(ct);
        }
        outbox.Poke();
        return true;
    }

    /// <summary>
    /// Stores the outcome on the reward in one short transaction. The referral's row is locked first, as the engine,
    /// the release of rewards and payments do (<see cref="ReferralStore.LockReferralsAsync"/>), so an acknowledgement of
    /// its approval or a void committed meanwhile is seen, and one being decided waits for this outcome.
    /// </summary>
    private async Task<bool> CompleteAsync(ReferloopDb db, string referralId, string rewardId, CouponAllocation allocation, CancellationToken ct)
    {
        await ReferralStore.LockReferralsAsync(db, [referralId], ct);
        // Locked too on PostgreSQL: a refund of another referral of the advocate may be taking it back.
        var rewards = db.OnSqlite ? db.Rewards : db.Rewards.FromSql($"""SELECT * FROM rewards WHERE "Id" = {rewardId} FOR UPDATE""");
        var reward = await rewards.FirstOrDefaultAsync(
            r => r.Id == rewardId && r.Status == RewardStatus.Pending && r.PendingReason == PendingReasons.AwaitingCoupon, ct);
        if (reward is null)
        {
            // Blocked meanwhile (its referral voided), or completed by another instance whose lease ran out.
            return false;
        }
        var snapshot = await RewardRelease.LoadSnapshotAsync(db, referralId, ct);
        var now = clock.GetUtcNow();
        if (allocation.Code is { } code)
        {
            reward.CouponCode = code;
            if (RewardRelease.MakePayable(snapshot, reward, now) is { } issued)
            {
                Outbox.Add(db, issued);
            }
        }
        else
        {
            await AdvocateCounters.GiveBackLimitsAsync(db, reward, ct);
            var reason = allocation.FailureReason ?? "no coupon available";
            reward.Status = RewardStatus.Blocked;
            reward.Reason = reason.Length <= 1000 ? reason : reason[..997] + "...";
            reward.PendingReason = null;
            reward.CouponDueAt = null;
            reward.UpdatedAt = now;
            Outbox.Add(db, snapshot.RewardMessage(reward, now));
        }
        await db.SaveChangesAsync(ct);
        return true;
    }
}
