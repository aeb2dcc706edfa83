using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Fraud;

/// <summary>
/// What the fraud checks need from the database, read before they run so that <see cref="FraudChecks.Evaluate"/>
/// decides over plain data. A fact whose check the policy leaves off is not read and stays empty.
/// </summary>
public sealed record FraudFacts
{
    public static readonly FraudFacts None = new();

    /// <summary>The address the friend's click was recorded from, as stored; null when there is no such click.</summary>
    public string? ClickIp { get; init; }

    /// <summary>
    /// The addresses of every click the load was asked about (the friend's and <c>otherClickIds</c>), by click id:
    /// one load serves checks of the same friend that name different clicks (<see cref="ForClick"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string?> ClickIps { get; init; } = new Dictionary<string, string?>();

    /// <summary>These facts as seen by a check of the click <paramref name="clickId"/>.</summary>
    public FraudFacts ForClick(string? clickId) =>
        this with { ClickIp = clickId is not null && ClickIps.TryGetValue(clickId, out var ip) ? ip : null };

    /// <summary>The addresses the advocate acted from, first seen first.</summary>
    public IReadOnlyList<string> AdvocateIps { get; init; } = [];

    /// <summary>The codes of the coupons issued to the advocate.</summary>
    public IReadOnlyList<string> AdvocateCouponCodes { get; init; } = [];

    /// <summary>The friends the advocate brought in the hour before now, the friend being judged left out.</summary>
    public int AdvocateFriendsLastHour { get; init; }

    /// <summary>
    /// Reads the facts for the checks each query's policy switches on, for all queries at once: one query per kind of
    /// fact, whatever the number of events. The clicks' and the advocates' addresses for <c>sameIp</c> and
    /// <c>blockedIps</c>, the advocates' coupon codes for <c>couponCycling</c> when the friend used a coupon, the last
    /// hour's friends for <c>maxReferralsPerHour</c>.
    /// </summary>
    public static async Task<FraudFacts[]> LoadAsync(ReferloopDb db, IReadOnlyList<FraudQuery> queries, DateTimeOffset now,
        CancellationToken ct)
    {
        var facts = queries.Select(_ => None).ToArray();
        var byIp = Where(queries, q => q.Policy.SameIp != FraudAction.Allow || q.Policy.BlockedIps.Count > 0);
        if (byIp.Count > 0)
        {
            // Click ids are at most 40 characters; a longer one cannot match and is not looked up.
            var clickIdsOf = byIp.ToDictionary(i => i, i => queries[i].ClickIds
                .OfType<string>().Where(id => !string.IsNullOrWhiteSpace(id) && id.Length <= 40).Distinct().ToList());
            var clickIds = clickIdsOf.Values.SelectMany(ids => ids).Distinct().ToList();
            var clickIps = clickIds.Count == 0 ? [] : await db.Clicks.AsNoTracking()
                .Where(c => clickIds.Contains(c.Id))
                .ToDictionaryAsync(c => c.Id, c => c.Ip, ct);
            var advocates = byIp.Select(i => queries[i].AdvocateId).Distinct().ToList();
            var advocateIps = (await db.ParticipantIps.AsNoTracking()
                    .Where(p => advocates.Contains(p.ParticipantId))
                    .OrderBy(p => p.FirstSeenAt)
                    .Select(p => new { p.ParticipantId, p.Ip })
                    .ToListAsync(ct))
                .ToLookup(p => p.ParticipantId, p => p.Ip);
            foreach (var i in byIp)
            {
                if (clickIdsOf[i].Count > 0)
                {
                    var ips = clickIdsOf[i].Where(clickIps.ContainsKey).ToDictionary(id => id, id => clickIps[id]);
                    facts[i] = (facts[i] with { ClickIps = ips }).ForClick(queries[i].Friend.ClickId);
                }
                facts[i] = facts[i] with { AdvocateIps = [.. advocateIps[queries[i].AdvocateId]] };
            }
        }

        var byCoupon = Where(queries, q => q.Policy.CouponCycling != FraudAction.Allow && !string.IsNullOrWhiteSpace(q.Friend.CouponCode));
        if (byCoupon.Count > 0)
        {
            var advocates = byCoupon.Select(i => queries[i].AdvocateId).Distinct().ToList();
            var codes = (await db.Coupons.AsNoTracking()
                    // One parameter per advocate (as in OrderKeyed.HoldingAny): an array parameter makes EF Core test it
                    // for NULL too, and PostgreSQL's generic plan cannot use the column's index for that.
                    .Where(c => EF.MultipleParameters(advocates).Contains(c.AllocatedToParticipantId!))
                    .Select(c => new { c.AllocatedToParticipantId, c.Code })
                    .ToListAsync(ct))
                .ToLookup(c => c.AllocatedToParticipantId!, c => c.Code);
            foreach (var i in byCoupon)
            {
                facts[i] = facts[i] with { AdvocateCouponCodes = [.. codes[queries[i].AdvocateId]] };
            }
        }

        var byRate = Where(queries, q => q.Policy.MaxReferralsPerHour is not null);
        if (byRate.Count > 0)
        {
            // Referrals belong to the engine; every referral makes its friend a participant with ReferredById set
            // (a participant added before is referred later), so friends referred in the last hour count them. The
            // friend being judged is left out, so the count is the same whether the engine loads this before or after
            // saving the friend: an e-mail is one participant of its campaign, so that is at most one of the advocate's
            // friends.
            var since = now.AddHours(-1);
            var advocates = byRate.Select(i => queries[i].AdvocateId).Distinct().ToList();
            var emails = byRate.Select(i => Participant.NormaliseEmail(queries[i].Friend.Email)).Distinct().ToList();
            // One row per advocate, plus one per friend being judged who is already among the advocate's friends.
            var groups = await db.Participants.AsNoTracking()
                .Where(p => EF.MultipleParameters(advocates).Contains(p.ReferredById!) && p.ReferredAt > since)
                .GroupBy(p => new { p.ReferredById, Email = emails.Contains(p.Email) ? p.Email : null })
                .Select(g => new { g.Key.ReferredById, g.Key.Email, Count = g.Count() })
                .ToListAsync(ct);
            var counts = groups.GroupBy(g => g.ReferredById!).ToDictionary(g => g.Key, g => g.Sum(x => x.Count));
            var judged = groups.Where(g => g.Email is not null).Select(g => (g.ReferredById!, g.Email!)).ToHashSet();
            foreach (var i in byRate)
            {
                var (advocateId, email) = (queries[i].AdvocateId, Participant.NormaliseEmail(queries[i].Friend.Email));
                facts[i] = facts[i] with
                {
                    AdvocateFriendsLastHour = counts.GetValueOrDefault(advocateId) - (judged.Contains((advocateId, email)) ? 1 : 0),
                };
            }
        }

        return facts;
    }

    private static List<int> Where(IReadOnlyList<FraudQuery> queries, Func<FraudQuery, bool> needs) =>
        Enumerable.Range(0, queries.Count).Where(i => needs(queries[i])).ToList();
}

/// <summary>
/// The facts to read for one fraud check: the campaign's policy, the advocate, the friend's signals and any other click
/// the check may look at (a referral's own click when the event names another).
/// </summary>
public sealed record FraudQuery(FraudPolicy Policy, string AdvocateId, FriendSignals Friend, IReadOnlyCollection<string?>? OtherClickIds = null)
{
    public IEnumerable<string?> ClickIds => (OtherClickIds ?? []).Append(Friend.ClickId);
}
