using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>Who referred the friend, and by which evidence.</summary>
public sealed record AttributionMatch(Participant Advocate, string By, string? ClickId);

/// <summary>An event of a friend without a referral, to attribute; <paramref name="CodeOwner"/> is the campaign's participant holding its referral code, if any.</summary>
public sealed record AttributionQuery(Campaign Campaign, TrackedEvent Event, Participant? CodeOwner);

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

    /// <summary>The latest earlier events of an email whose click ids are looked at.</summary>
    private const int EarlierEventsPerEmail = 20;

    /// <summary>Clicks per address read for a batch at most; past it, each event reads its own.</summary>
    private const int ClicksPerIp = 20;

    /// <summary>
    /// Attributes a batch of events with one read per kind of evidence, whatever their number, and only for the events
    /// the stronger evidence left open: clicks by id, then the click ids the emails reported before with their clicks,
    /// then the clicks from the addresses, then the advocates of the clicks chosen. Returns the matches by event id.
    /// </summary>
    public static async Task<Dictionary<string, AttributionMatch>> FindAllAsync(ReferloopDb db, IReadOnlyList<AttributionQuery> queries,
        CancellationToken ct)
    {
        var found = new Dictionary<string, AttributionMatch>();
        foreach (var query in queries)
        {
            if (query.CodeOwner is { } owner)
            {
                found[query.Event.Id] = new AttributionMatch(owner, ByReferralCode, null);
            }
        }
        List<AttributionQuery> Open(Func<TrackedEvent, bool> has) =>
            queries.Where(q => !found.ContainsKey(q.Event.Id) && has(q.Event)).ToList();

        var byClick = Open(e => e.ClickId is not null);
        if (byClick.Count > 0)
        {
            var ids = byClick.Select(q => q.Event.ClickId!).Distinct().ToList();
            var clicks = await db.Clicks.AsNoTracking().Include(c => c.Participant).Where(c => ids.Contains(c.Id)).ToDictionaryAsync(c => c.Id, ct);
            foreach (var query in byClick)
            {
                if (clicks.GetValueOrDefault(query.Event.ClickId!) is { } click && click.CampaignId == query.Campaign.Id
                    && click.CreatedAt >= WindowStart(query))
                {
                    found[query.Event.Id] = new AttributionMatch(click.Participant!, ByClickId, click.Id);
                }
            }
        }

        // A click id this email reported before (e.g. while the campaign was paused) still counts inside the window.
        var chosen = new Dictionary<string, (Click Click, string By)>();
        foreach (var (eventId, click) in await EarlierClicksOfEmailsAsync(db, Open(_ => true), ct))
        {
            chosen[eventId] = (click, ByEmail);
        }
        foreach (var (eventId, click) in await LatestClicksFromIpsAsync(db, Open(e => e.Ip is not null && !chosen.ContainsKey(e.Id)), ct))
        {
            chosen[eventId] = (click, ByIp);
        }

        if (chosen.Count > 0)
        {
            var advocateIds = chosen.Values.Select(c => c.Click.ParticipantId).Distinct().ToList();
            var advocates = await db.Participants.AsNoTracking().Where(p => advocateIds.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
            foreach (var (eventId, (click, by)) in chosen)
            {
                found[eventId] = new AttributionMatch(advocates[click.ParticipantId], by, click.Id);
            }
        }
        return found;
    }

    /// <summary>
    /// For each event, the latest click inside its window among the clicks of the email's latest
    /// <see cref="EarlierEventsPerEmail"/> earlier events that reported one. One read for all; when the emails have
    /// more such events than that read holds, each event reads its own.
    /// </summary>
    private static async Task<Dictionary<string, Click>> EarlierClicksOfEmailsAsync(ReferloopDb db, List<AttributionQuery> queries,
        CancellationToken ct)
    {
        var found = new Dictionary<string, Click>();
        if (queries.Count == 0)
        {
            return found;
        }
        var campaignIds = queries.Select(q => q.Campaign.Id).Distinct().ToList();
        var emails = queries.Select(q => q.Event.Email).Distinct().ToList();
        var eventIds = queries.Select(q => q.Event.Id).ToList();
        var most = EarlierEventsPerEmail * emails.Count;
        var earlier = await db.Events.AsNoTracking()
            .Where(e => campaignIds.Contains(e.CampaignId) && emails.Contains(e.Email) && e.ClickId != null && !eventIds.Contains(e.Id))
            .OrderByDescending(e => e.Id)
            .Take(most + 1)
            .Select(e => new { e.CampaignId, e.Email, ClickId = e.ClickId! })
            .ToListAsync(ct);
        if (earlier.Count > most && queries.Count > 1)
        {
            return await OneByOneAsync(queries, one => EarlierClicksOfEmailsAsync(db, one, ct));
        }
        var clickIds = earlier.Select(e => e.ClickId).Distinct().ToList();
        var clicks = clickIds.Count == 0 ? [] : await db.Clicks.AsNoTracking().Where(c => clickIds.Contains(c.Id)).ToDictionaryAsync(c => c.Id, ct);
        foreach (var query in queries)
        {
            var (tracked, start) = (query.Event, WindowStart(query));
            var click = earlier.Where(e => e.CampaignId == query.Campaign.Id && e.Email == tracked.Email)
                .Take(EarlierEventsPerEmail)
                .Select(e => clicks.GetValueOrDefault(e.ClickId))
                .Where(c => c is not null && c.CampaignId == query.Campaign.Id && c.CreatedAt >= start && c.CreatedAt <= tracked.OccurredAt)
                .MaxBy(c => c!.CreatedAt);
            if (click is not null)
            {
                found[tracked.Id] = click;
            }
        }
        return found;
    }

    /// <summary>
    /// For each event, the latest click from its address inside its window, up to the event. One read for all, of the
    /// clicks between the earliest window start and the latest event; when the addresses have more than
    /// <see cref="ClicksPerIp"/> clicks each there, each event reads its own (its latest, and no more).
    /// </summary>
    private static async Task<Dictionary<string, Click>> LatestClicksFromIpsAsync(ReferloopDb db, List<AttributionQuery> queries,
        CancellationToken ct)
    {
        var found = new Dictionary<string, Click>();
        if (queries.Count == 0)
        {
            return found;
        }
        var campaignIds = queries.Select(q => q.Campaign.Id).Distinct().ToList();
        var ips = queries.Select(q => q.Event.Ip!).Distinct().ToList();
        var from = queries.Min(WindowStart);
        var to = queries.Max(q => q.Event.OccurredAt);
        var most = ClicksPerIp * ips.Count;
        var clicks = await db.Clicks.AsNoTracking()
            .Where(c => campaignIds.Contains(c.CampaignId) && EF.MultipleParameters(ips).Contains(c.Ip!) && c.CreatedAt >= from && c.CreatedAt <= to)
            .OrderByDescending(c => c.CreatedAt)
            .Take(most + 1)
            .ToListAsync(ct);
        if (clicks.Count > most && queries.Count > 1)
        {
            return await OneByOneAsync(queries, one => LatestClicksFromIpsAsync(db, one, ct));
        }
        foreach (var query in queries)
        {
            var (tracked, start) = (query.Event, WindowStart(query));
            var click = clicks.FirstOrDefault(c => c.CampaignId == query.Campaign.Id && c.Ip == tracked.Ip
                && c.CreatedAt >= start && c.CreatedAt <= tracked.OccurredAt);
            if (click is not null)
            {
                found[tracked.Id] = click;
            }
        }
        return found;
    }

    private static async Task<Dictionary<string, Click>> OneByOneAsync(List<AttributionQuery> queries,
        Func<List<AttributionQuery>, Task<Dictionary<string, Click>>> read)
    {
        var found = new Dictionary<string, Click>();
        foreach (var query in queries)
        {
            foreach (var (eventId, click) in await read([query]))
            {
                found[eventId] = click;
            }
        }
        return found;
    }

    private static DateTimeOffset WindowStart(AttributionQuery query) =>
        query.Event.OccurredAt.AddDays(-query.Campaign.AttributionWindowDays);
}
