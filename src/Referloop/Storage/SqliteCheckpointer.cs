using Microsoft.Data.Sqlite;

namespace Referloop.Storage;

/// <summary>
/// Copies SQLite's write-ahead log into the database file (a checkpoint) on a thread of its own, every
/// <see cref="Interval"/> while something was written, so that the writer never does: left to SQLite, the commit that
/// takes the log past its limit checkpoints in the writer's time (about 15 ms every 15 to 25 commits of the event
/// loop, the tail of its latency), while the other core waits. A passive checkpoint waits for nobody: the writer goes
/// on appending meanwhile, and restarts the log from its start once a checkpoint has copied all of it.
/// <see cref="SqliteWriteQueue.WalCheckpointPages"/> stays as a backstop, should this one fall behind.
/// </summary>
internal sealed class SqliteCheckpointer(string connectionString, SqliteWriteQueue writes, ILogger<SqliteCheckpointer> log)
    : BackgroundService
{
    /// <summary>
    /// How often: a page several batches write (the ends of tables and indexes, the counters) is copied once per
    /// checkpoint, so a longer interval copies less; a shorter one keeps the log, and each checkpoint, smaller.
    /// </summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>What the last checkpoint found in the log and copied from it, in pages.</summary>
    internal (int LogPages, int Copied)? Last { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // From the start, not from when this loop first runs (on a pool thread, maybe after the first writes).
        var seen = 0L;
        SqliteConnection? connection = null;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = writes.WritesDone;
                if (now == seen)
                {
                    continue;
                }
                try
                {
                    connection ??= Open();
                    Last = Checkpoint(connection);
                    // Only once it went through: a failed one is tried again at the next tick, writes or not.
                    seen = now;
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
