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
    /// Reads the facts for the checks <paramref name="policy"/> switches on, one simple query each: the click's
    /// address and the advocate's addresses for <c>sameIp</c> and <c>blockedIps</c>, the advocate's coupon codes for
    /// <c>couponCycling</c> when the friend used a coupon, the last hour's friends for <c>maxReferralsPerHour</c>.
    /// </summary>
    public static async Task<FraudFacts> LoadAsync(ReferloopDb db, FraudPolicy policy, string advocateId,
        FriendSignals friend, DateTimeOffset now, CancellationToken ct, IReadOnlyCollection<string?>? otherClickIds = null)
    {
        var facts = None;

        if (policy.SameIp != FraudAction.Allow || policy.BlockedIps.Count > 0)
        {
            // Click ids are at most 40 characters; a longer one cannot match and is not looked up.
            var clickIds = (otherClickIds ?? []).Append(friend.ClickId)
                .OfType<string>().Where(id => !string.IsNullOrWhiteSpace(id) && id.Length <= 40).Distinct().ToList();
            if (clickIds.Count > 0)
            {
                var clickIps = await db.Clicks.AsNoTracking()
                    .Where(c => clickIds.Contains(c.Id))
                    .ToDictionaryAsync(c => c.Id, c => c.Ip, ct);
                facts = (facts with { ClickIps = clickIps }).ForClick(friend.ClickId);
            }
            facts = facts with
            {
                AdvocateIps = await db.ParticipantIps.AsNoTracking()
                    .Where(p => p.ParticipantId == advocateId)
                    .OrderBy(p => p.FirstSeenAt)
                    .Select(p => p.Ip)
                    .ToListAsync(ct),
            };
        }

        if (policy.CouponCycling != FraudAction.Allow && !string.IsNullOrWhiteSpace(friend.CouponCode))
        {
            facts = facts with
            {
                AdvocateCouponCodes = await db.Coupons.AsNoTracking()
                    .Where(c => c.AllocatedToParticipantId == advocateId)
                    .Select(c => c.Code)
                    .ToListAsync(ct),
            };
        }

        if (policy.MaxReferralsPerHour is not null)
        {
            // Referrals belong to the engine; every referral makes its friend a participant with ReferredById set,
            // so friends created in the last hour count them. The friend being judged is left out, so the count is
            // the same whether the engine loads this before or after saving the friend.
            var since = now.AddHours(-1);
            var friendEmail = Participant.NormaliseEmail(friend.Email);
            facts = facts with
            {
                AdvocateFriendsLastHour = await db.Participants.AsNoTracking()
                    .CountAsync(p => p.ReferredById == advocateId && p.CreatedAt > since && p.Email != friendEmail, ct),
            };
        }

        return facts;
    }
}
