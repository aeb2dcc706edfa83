using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;

namespace Referloop.Referrals;

/// <summary>
/// The review queue: flagged referrals in the order they entered it, oldest first. A referral flagged at
/// qualification entered later than its id says, so the keyset is (<see cref="Referral.FlaggedAt"/>, id).
/// </summary>
public static class ReviewQueue
{
    public static async Task<Page<ReferralResponse>> PageAsync(IQueryable<Referral> flagged, string? after, int limit,
        CancellationToken ct)
    {
        if (after is not null && Parse(after) is { } key)
        {
            var (at, id) = key;
            flagged = flagged.Where(r => r.FlaggedAt > at || (r.FlaggedAt == at && string.Compare(r.Id, id) > 0));
        }
        var rows = await flagged.OrderBy(r => r.FlaggedAt).ThenBy(r => r.Id).Take(limit + 1).ToListAsync(ct);
        return Paging.ToPage(rows, limit, Key, ReferralResponse.From);
    }

    private static string Key(Referral r) =>
        $"{r.FlaggedAt.GetValueOrDefault().UtcTicks.ToString(CultureInfo.InvariantCulture)}:{r.Id}";

    /// <summary>A cursor from another list (a plain id) starts the queue from its beginning.</summary>
    private static (DateTimeOffset At, string Id)? Parse(string key)
    {
        var colon = key.IndexOf(':');
        return colon > 0 && long.TryParse(key.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            && ticks <= DateTimeOffset.MaxValue.UtcTicks
            ? (new DateTimeOffset(ticks, TimeSpan.Zero), key[(colon + 1)..])
            : null;
    }
}
