using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Rewards;

/// <summary>
/// Per-advocate counters: referrals, conversions, custom events and the places taken under reward limits. The
/// referral core reads them with the advocate (<see cref="Referrals.ReferralStore"/>, which locks the advocate on
/// PostgreSQL) and writes what moved as deltas in one statement.
/// </summary>
public static class AdvocateCounters
{
    public const string Referrals = "referrals";
    public const string Conversions = "conversions";

    public static string CustomEvent(string name) => "event:" + name;

    public static Task GiveBackAsync(ReferloopDb db, string participantId, string name, CancellationToken ct) =>
        db.AdvocateCounters.Where(c => c.ParticipantId == participantId && c.Name == name && c.Count > 0)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Count, c => c.Count - 1), ct);

    /// <summary>The limit counter of a reward's rule, recipient and period (a month <c>yyyy-MM</c>, or <c>total</c>).</summary>
    public static string Limit(Reward reward, string period) => $"rule:{reward.RuleId}:{reward.Recipient}:{period}";

    /// <summary>Gives back the limit places a reward took, when it is blocked after taking them.</summary>
    public static async Task GiveBackLimitsAsync(ReferloopDb db, Reward reward, CancellationToken ct)
    {
        if (reward.CountedMonth is { } month)
        {
            await GiveBackAsync(db, reward.AdvocateId, Limit(reward, month), ct);
            reward.CountedMonth = null;
        }
        if (reward.CountedTotal)
        {
            await GiveBackAsync(db, reward.AdvocateId, Limit(reward, "total"), ct);
            reward.CountedTotal = false;
        }
    }
}
