using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>Who referred the friend, and by which evidence.</summary>
public sealed record AttributionMatch(Participant Advocate, string By, string? ClickId);

/// <summary>
/// Finds the advocate behind a friend's first event, strongest evidence first: the referral code, the click id
/// (cookie or <c>rl_click</c> parameter), an earlier click this email came through, then the latest click from
/// the same IP. Clicks count only inside the campaign's attribution window, edges included.
/// </summary>
public static class Attribution
{
    public const string ByReferralCode = "referral_code";
    public const string ByClickId = "click_id";
    public const string ByEmail = "email";
    public const string ByIp = "ip";

    // The first two lookups settle nearly every event, so they are compiled once.
    private static readonly Func<ReferloopDb, string, string, CancellationToken, Task<Participant?>> AdvocateByCode =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string code, CancellationToken ct) =>
            db.Participants.FirstOrDefault(p => p.Code == code && p.CampaignId == campaignId));

    private static readonly Func<ReferloopDb, string, string, DateTimeOffset, CancellationToken, Task<Click?>> ClickInWindow =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string clickId, DateTimeOffset windowStart, CancellationToken ct) =>
            db.Clicks.Include(c => c.Participant)
                .FirstOrDefault(c => c.Id == clickId && c.CampaignId == campaignId && c.CreatedAt >= windowStart));

    /// <param name="codeOwnerRead">
    /// The caller has already read the campaign's participant holding the event's referral code: <paramref name="codeOwner"/>,
    /// null when there is none.
    /// </param>
    /// <param name="clicks">
    /// When given, the clicks (with their participants) the caller has already read by the events' click ids: the
    /// event's click id is looked up there rather than in the database.
    /// </param>
    public static async Task<AttributionMatch?> FindAsync(ReferloopDb db, Campaign campaign, TrackedEvent tracked, bool codeOwnerRead,
        Participant? codeOwner, CancellationToken ct, IReadOnlyDictionary<string, Click>? clicks = null)
    {
        if (tracked.ReferralCode is { } code)
        {
            var advocate = codeOwnerRead ? codeOwner : await AdvocateByCode(db, campaign.Id, code, ct);
            if (advocate is not null)
            {
                return new AttributionMatch(advocate, ByReferralCode, null);
            }
        }

        var windowStart = tracked.OccurredAt.AddDays(-campaign.AttributionWindowDays);
        if (tracked.ClickId is { } clickId)
        {
            var click = clicks is null
                ? await ClickInWindow(db, campaign.Id, clickId, windowStart, ct)
                : clicks.GetValueOrDefault(clickId) is { } read && read.CampaignId == campaign.Id && read.CreatedAt >= windowStart ? read : null;
            if (click is not null)
            {
                return new AttributionMatch(click.Participant!, ByClickId, click.Id);
            }
        }

        // A click id this email reported before (e.g. while the campaign was paused) still counts inside the window.
        var earlierClickIds = await db.Events.AsNoTracking()
            .Where(e => e.CampaignId == campaign.Id && e.Email == tracked.Email && e.ClickId != null && e.Id != tracked.Id)
            .OrderByDescending(e => e.Id)
            .Select(e => e.ClickId!)
            .Take(20)
            .ToListAsync(ct);
        if (earlierClickIds.Count > 0)
        {
            var click = await db.Clicks.Include(c => c.Participant)
                .Where(c => earlierClickIds.Contains(c.Id) && c.CampaignId == campaign.Id
                    && c.CreatedAt >= windowStart && c.CreatedAt <= tracked.OccurredAt)
                .OrderByDescending(c => c.CreatedAt)
                .FirstOrDefaultAsync(ct);
            if (click is not null)
            {
                return new AttributionMatch(click.Participant!, ByEmail, click.Id);
            }
        }

        if (tracked.Ip is { } ip)
        {
            var click = await db.Clicks.Include(c => c.Participant)
                .Where(c => c.CampaignId == campaign.Id && c.Ip == ip && c.CreatedAt >= windowStart && c.CreatedAt <= tracked.OccurredAt)
                .OrderByDescending(c => c.CreatedAt)
                .FirstOrDefaultAsync(ct);
            if (click is not null)
            {
                return new AttributionMatch(click.Participant!, ByIp, click.Id);
            }
        }
        return null;
    }
}
