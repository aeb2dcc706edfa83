using Microsoft.EntityFrameworkCore;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.Dashboard.Analytics;

/// <summary>A reporting period: the last N days, or all time.</summary>
public sealed record AnalyticsPeriod(string Key, string Label, int? Days)
{
    public static readonly AnalyticsPeriod[] All =
    [
        new("7d", "Last 7 days", 7),
        new("30d", "Last 30 days", 30),
        new("90d", "Last 90 days", 90),
        new("all", "All time", null),
    ];

    public static AnalyticsPeriod Parse(string? key) => All.FirstOrDefault(p => p.Key == key) ?? All[1];

    // Referloop holds nothing older, and a real lower bound keeps every query one shape on both providers.
    private static readonly DateTimeOffset Beginning = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public DateTimeOffset Since(DateTimeOffset now) => Days is { } days ? now.AddDays(-days) : Beginning;
}

public sealed record Funnel(int Clicks, int SignUps, int Conversions, int Advocates)
{
    /// <summary>Conversions ÷ referred sign-ups.</summary>
    public double? ConversionRate => SignUps == 0 ? null : (double)Conversions / SignUps;

    /// <summary>Referred sign-ups ÷ share-link clicks.</summary>
    public double? ClickToSignUpRate => Clicks == 0 ? null : (double)SignUps / Clicks;

    /// <summary>
    /// K-factor = conversions ÷ advocates: each advocate's referred sign-ups × the conversion rate of those sign-ups.
    /// Above 1 the program grows by itself.
    /// </summary>
    public double? KFactor => Advocates == 0 ? null : (double)Conversions / Advocates;
}

public sealed record Revenue(string Currency, decimal Amount, int Purchases);

public sealed record TopAdvocate(string ParticipantId, string CampaignId, string Email, string? Name, int SignUps, int Conversions);

public sealed record WebhookHealth(int Attempts, int Succeeded, double? AverageLatencyMs, long? P95LatencyMs)
{
    public double? SuccessRate => Attempts == 0 ? null : (double)Succeeded / Attempts;
}

public sealed record AnalyticsReport(AnalyticsPeriod Period, DateTimeOffset Since, DateTimeOffset Until, Funnel Funnel,
    IReadOnlyList<Revenue> Revenue, IReadOnlyList<TopAdvocate> TopAdvocates, WebhookHealth Webhooks);

/// <summary>
/// The dashboard's figures for one campaign (or all) and one period, each an aggregate query that runs on SQLite and
/// PostgreSQL alike. Definitions: clicks are share-link visits; sign-ups are referred friends (referrals created);
/// conversions are referrals that qualified in the period and are not voided; revenue is the purchase value of events
/// attributed to a referral that is not voided.
/// </summary>
public sealed class CampaignAnalytics(ReferloopDb db, TimeProvider clock)
{
    public const int TopAdvocateCount = 10;

    public async Task<AnalyticsReport> ReportAsync(string? campaignId, AnalyticsPeriod period, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var since = period.Since(now);

        var clicks = db.Clicks.AsNoTracking().Where(c => c.CreatedAt >= since);
        var referrals = db.Referrals.AsNoTracking();
        var advocates = db.Participants.AsNoTracking().Where(p => p.IsReferrer);
        var purchases = db.Events.AsNoTracking().Where(e => e.Type == EventKinds.Purchase && e.ReceivedAt >= since
            && e.PurchaseValue != null && db.Referrals.Any(r => r.Id == e.ReferralId && r.Status != ReferralStatus.Voided));
        var attempts = db.WebhookAttempts.AsNoTracking().Where(a => a.AttemptedAt >= since);
        if (campaignId is not null)
        {
            clicks = clicks.Where(c => c.CampaignId == campaignId);
            referrals = referrals.Where(r => r.CampaignId == campaignId);
            advocates = advocates.Where(p => p.CampaignId == campaignId);
            purchases = purchases.Where(e => e.CampaignId == campaignId);
            attempts = attempts.Where(a => db.WebhookDeliveries.Any(d => d.Id == a.DeliveryId && d.Message!.CampaignId == campaignId));
        }

        var funnel = new Funnel(
            await clicks.CountAsync(ct),
            await referrals.CountAsync(r => r.CreatedAt >= since, ct),
            await referrals.CountAsync(r => r.QualifiedAt >= since && r.Status != ReferralStatus.Voided, ct),
            await advocates.CountAsync(ct));

        // SQLite keeps decimals as text and cannot sum them; a double sum rounded to cents is exact enough for a report.
        var revenue = (await purchases
                .GroupBy(e => e.Currency)
                .Select(g => new { Currency = g.Key, Amount = g.Sum(e => (double)e.PurchaseValue!.Value), Purchases = g.Count() })
                .ToListAsync(ct))
            .Select(r => new Revenue(r.Currency ?? "—", Math.Round((decimal)r.Amount, 2), r.Purchases))
            .OrderByDescending(r => r.Amount)
            .ToList();

        var top = await referrals
            .GroupBy(r => r.AdvocateId)
            .Select(g => new
            {
                AdvocateId = g.Key,
                SignUps = g.Count(r => r.CreatedAt >= since),
                Conversions = g.Count(r => r.QualifiedAt >= since && r.Status != ReferralStatus.Voided),
            })
            .Where(a => a.SignUps > 0 || a.Conversions > 0)
            .OrderByDescending(a => a.Conversions).ThenByDescending(a => a.SignUps).ThenBy(a => a.AdvocateId)
            .Take(TopAdvocateCount)
            .ToListAsync(ct);
        var ids = top.Select(a => a.AdvocateId).ToList();
        var people = await db.Participants.AsNoTracking().Where(p => ids.Contains(p.Id))
            .ToDictionaryAsync(p => p.Id, ct);
        var topAdvocates = top.Where(a => people.ContainsKey(a.AdvocateId))
            .Select(a => new TopAdvocate(a.AdvocateId, people[a.AdvocateId].CampaignId, people[a.AdvocateId].Email,
                people[a.AdvocateId].Name, a.SignUps, a.Conversions))
            .ToList();

        var attemptCount = await attempts.CountAsync(ct);
        var webhooks = new WebhookHealth(0, 0, null, null);
        if (attemptCount > 0)
        {
            var succeeded = await attempts.CountAsync(a => a.StatusCode >= 200 && a.StatusCode < 300, ct);
            var average = await attempts.AverageAsync(a => (double)a.LatencyMs, ct);
            // The 95th percentile by rank: the attempt 95% of the way up the latency order.
            var rank = (int)Math.Ceiling(attemptCount * 0.95) - 1;
            var p95 = await attempts.OrderBy(a => a.LatencyMs).Skip(rank).Select(a => a.LatencyMs).FirstAsync(ct);
            webhooks = new WebhookHealth(attemptCount, succeeded, average, p95);
        }

        return new AnalyticsReport(period, since, now, funnel, revenue, topAdvocates, webhooks);
    }
}
