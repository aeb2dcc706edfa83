using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Storage;

namespace Referloop.Referrals;

/// <summary>
/// Approves qualified referrals whose holding period has ended. Driven by <see cref="TimeProvider"/>, so tests move
/// a fake clock instead of waiting. Each referral is approved in its own transaction with a conditional status
/// change, so several instances can run this side by side.
/// </summary>
internal sealed class AutoApprovalService(IServiceScopeFactory scopes, TimeProvider clock, IConfiguration configuration,
    ILogger<AutoApprovalService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(Math.Max(1, configuration.GetValue("Referrals:AutoApprovalIntervalSeconds", 60)));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogError(exception, "Auto-approval failed; trying again in {Interval}.", interval);
            }
            catch (Exception)
            {
                // Stopping: a run cut short by shutdown is done again by the next start; it is not an error.
                return;
            }
            try
            {
                await Task.Delay(interval, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Approves every referral due now; returns how many were approved.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var approved = 0;
        while (true)
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            var now = clock.GetUtcNow();
            // A campaign switched to manual approval leaves its referrals to a person: they are not looked at (nor
            // tried again on every run) until it is switched back to auto.
            var due = await (
                    from r in db.Referrals
                    where r.Status == ReferralStatus.Qualified && r.ApproveAfter != null && r.ApproveAfter <= now
                    join c in db.Campaigns on r.CampaignId equals c.Id
                    where c.Approval == ApprovalPolicy.Auto
                    orderby r.ApproveAfter
                    select r.Id)
                .AsNoTracking()
                .Take(100)
                .ToListAsync(ct);
            var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
            var batch = 0;
            foreach (var id in due)
            {
                if (await engine.ApproveDueAsync(id, ct))
                {
                    batch++;
                }
            }
            approved += batch;
            if (due.Count < 100 || batch == 0)
            {
                return approved;
            }
        }
    }
}
