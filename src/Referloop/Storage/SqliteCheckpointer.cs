using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Referloop.Storage;

/// <summary>
/// Copies SQLite's write-ahead log into the database file (a checkpoint) on a thread of its own while something was
/// written (see <see cref="Due"/>), so that the writer never does: left to SQLite, the commit that
/// takes the log past its limit checkpoints in the writer's time (about 15 ms every 15 to 25 commits of the event
/// loop, the tail of its latency), while the other core waits. A passive checkpoint waits for nobody: the writer goes
/// on appending meanwhile, and restarts the log from its start once a checkpoint has copied all of it.
/// <see cref="SqliteWriteQueue.WalCheckpointPages"/> stays as a backstop, should this one fall behind.
/// <para>
/// SQLite starts the log again only in a write that began on a log copied to its end, and under steady writes a
/// passive checkpoint never leaves one: what was written while it copied is left for the next. The log then grew to
/// the backstop, whose checkpoint ran in the writer's time (15 to 35 ms), and the commit that started the log again
/// cut the file back to 32 MiB (another 20 ms): about once a second at half load, the p99 of the event loop's latency
/// (50 to 65 ms). So once the log holds <see cref="RestartPages"/>, a checkpoint that copied all it found is followed
/// by one in the writer's turn, which copies what was written meanwhile and flushes the database file (11 to 17 ms on
/// the bench host, however little it copies), and the next write starts the log again.
/// </para>
/// </summary>
internal sealed class SqliteCheckpointer(string connectionString, SqliteWriteQueue writes, ILogger<SqliteCheckpointer> log)
    : BackgroundService
{
    /// <summary>How often the checkpointer looks whether a checkpoint is due.</summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest a written log waits for its checkpoint.</summary>
    internal static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(1);

    /// <summary>About how many pages (16 MiB of 4 KiB pages) the log holds before a checkpoint is due sooner.</summary>
    internal const int TargetPages = 4_096;

    /// <summary>
    /// The pages in the log past which a checkpoint that copied all of it has the log started again (see the class):
    /// every other checkpoint under steady writes. The pass in the writer's turn costs about the same whatever it
    /// copies, so it comes as seldom as the log's file allows (<see cref="SqliteWriteQueue.WalSizeLimitBytes"/>).
    /// </summary>
    internal const int RestartPages = 2 * TargetPages;

    /// <summary>
    /// What the last checkpoint found in the log and copied from it, in pages, and whether it ended with the pass in the
    /// writer's turn, after which the next write starts the log again.
    /// </summary>
    internal (int LogPages, int Copied, bool Restarts)? Last { get; private set; }

    /// <summary>
    /// Whether to checkpoint now: once a second while something was written, sooner when the log, reckoned by the
    /// pages per write the last checkpoint found, holds <see cref="TargetPages"/>. Each checkpoint costs a flush of the
    /// database file beside the writers' flushes of the log, and a page several batches write (the ends of tables and
    /// indexes, the counters) is copied once per checkpoint; a bounded log keeps each checkpoint's burst of writes, and
    /// the log's index that every read searches, small. Side by side (QUICK SQLite, six rounds), this gave 1.11× the
    /// events/s of a checkpoint every 100 ms, at 0.89 against 0.97 CPU s per 1,000 events.
    /// </summary>
    internal static bool Due(TimeSpan sinceLast, long writesSince, double pagesPerWrite) =>
        writesSince > 0 && (sinceLast >= MaxInterval || writesSince * pagesPerWrite >= TargetPages);

    /// <summary>
    /// The pages each write added to the log, from what two checkpoints in a row found in it. The log starts again after
    /// the pass in the writer's turn, so it then holds only what the writes since wrote; otherwise it still holds what
    /// the last checkpoint found, copied or not (under steady writes a passive checkpoint never leaves the log copied to
    /// its end), unless it is shorter than that: it started again at a write after a checkpoint that met none. Null when
    /// there is nothing to go by: a few writes only, or a checkpoint that found no log (-1: another was running, or the
    /// database does not keep one).
    /// </summary>
    internal static double? PagesPerWrite((int LogPages, int Copied, bool Restarts)? before, int logPages, long writes)
    {
        if (logPages < 0 || writes < 8)
        {
            return null;
        }
        var added = before is { Restarts: false } last && logPages >= last.LogPages ? logPages - last.LogPages : logPages;
        return Math.Max(1.0, (double)added / writes);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // From the start, not from when this loop first runs (on a pool thread, maybe after the first writes).
        var seen = 0L;
        var since = Stopwatch.GetTimestamp();
        // Until a checkpoint has measured it: a guess on the high side, so that the first one comes soon.
        var pagesPerWrite = 64.0;
        SqliteConnection? connection = null;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = writes.WritesDone;
                if (!Due(Stopwatch.GetElapsedTime(since), now - seen, pagesPerWrite))
                {
                    continue;
                }
                try
                {
                    connection ??= Open();
                    var found = Checkpoint(connection);
                    var restarts = false;
                    if (found.LogPages >= RestartPages && found.Copied == found.LogPages)
                    {
                        // What was written while it copied, with no write running, so that the next one starts the log again.
                        var last = connection;
                        found = await writes.BetweenWritesAsync(() => Checkpoint(last), stoppingToken);
                        restarts = found.Copied == found.LogPages;
                    }
                    pagesPerWrite = PagesPerWrite(Last, found.LogPages, now - seen) ?? pagesPerWrite;
                    Last = found.LogPages >= 0 ? (found.LogPages, found.Copied, restarts) : Last;
                    // Only once it went through: a failed one is tried again at the next tick, writes or not.
                    seen = now;
                    since = Stopwatch.GetTimestamp();
                }
                catch (Exception e)
                {
                    // Whatever it was (a locked or vanished file), the next tick tries again: a failure here must not
                    // stop the host, and the writers' own checkpoint still bounds the log.
                    log.LogWarning(e, "Checkpointing the SQLite log failed; trying again in {Interval} ms", Interval.TotalMilliseconds);
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            connection?.Dispose();
        }
    }

    private SqliteConnection Open()
    {
        // A connection of its own, outside the pool: it holds no transaction, and a checkpoint takes no writer's turn.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>One passive checkpoint: copies what no reader still needs from the log, and waits for nobody.</summary>
    internal static (int LogPages, int Copied) Checkpoint(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt32(1), reader.GetInt32(2));
    }
}
