using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Rewards;

/// <summary>
/// Atomic per-advocate counters. Every change is one conditional UPDATE inside the caller's transaction: on
/// PostgreSQL the row lock serialises concurrent events of one advocate (across server instances too), on SQLite
/// the write transaction does; the affected-row count tells whether a limit still had room.
/// </summary>
public static class AdvocateCounters
{
    public const string Referrals = "referrals";
    public const string Conversions = "conversions";

    public static string CustomEvent(string name) => "event:" + name;

    /// <summary>Adds one and returns the new count, creating the counter at 1: a single upsert that both providers run.</summary>
    public static async Task<int> IncrementAsync(ReferloopDb db, string participantId, string name, CancellationToken ct)
    {
        var counts = await db.Database.SqlQuery<int>($"""
            INSERT INTO advocate_counters ("ParticipantId", "Name", "Count") VALUES ({participantId}, {name}, 1)
            ON CONFLICT ("ParticipantId", "Name") DO UPDATE SET "Count" = advocate_counters."Count" + 1
            RETURNING "Count" AS "Value"
            """).ToListAsync(ct);
        return counts[0];
    }

    /// <summary>
    /// Adds one to <paramref name="name"/> (creating it at 1) and reads <paramref name="alsoRead"/> in the same
    /// statement: the new count, and the other counter's (0 when it does not exist yet).
    /// </summary>
    public static async Task<(int Count, int Other)> IncrementAsync(ReferloopDb db, string participantId, string name,
        string alsoRead, CancellationToken ct)
    {
        var counts = await db.Database.SqlQuery<CountPair>($"""
            INSERT INTO advocate_counters ("ParticipantId", "Name", "Count") VALUES ({participantId}, {name}, 1)
            ON CONFLICT ("ParticipantId", "Name") DO UPDATE SET "Count" = advocate_counters."Count" + 1
            RETURNING "Count", (SELECT o."Count" FROM advocate_counters AS o WHERE o."ParticipantId" = {participantId} AND o."Name" = {alsoRead}) AS "Other"
            """).ToListAsync(ct);
        return (counts[0].Count, counts[0].Other ?? 0);
    }

    private sealed class CountPair
    {
        public int Count { get; init; }
        public int? Other { get; init; }
    }

    /// <summary>Adds one when the counter is below <paramref name="limit"/>; false when the limit is reached.</summary>
    public static async Task<bool> TryTakeAsync(ReferloopDb db, string participantId, string name, int limit, CancellationToken ct)
    {
        await EnsureAsync(db, participantId, name, ct);
        var taken = await db.AdvocateCounters.Where(c => c.ParticipantId == participantId && c.Name == name && c.Count < limit)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Count, c => c.Count + 1), ct);
        return taken == 1;
    }

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

    public static async Task<int> ReadAsync(ReferloopDb db, string participantId, string name, CancellationToken ct) =>
        await ReadQuery(db, participantId, name, ct) ?? 0;

    private static readonly Func<ReferloopDb, string, string, CancellationToken, Task<int?>> ReadQuery =
        EF.CompileAsyncQuery((ReferloopDb db, string participantId, string name, CancellationToken ct) =>
            db.AdvocateCounters.AsNoTracking()
                .Where(c => c.ParticipantId == participantId && c.Name == name)
                .Select(c => (int?)c.Count)
                .FirstOrDefault());

    private static Task EnsureAsync(ReferloopDb db, string participantId, string name, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync(
            $"""INSERT INTO advocate_counters ("ParticipantId", "Name", "Count") VALUES ({participantId}, {name}, 0) ON CONFLICT DO NOTHING""",
            ct);
}
