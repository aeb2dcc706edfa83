using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Referloop.Tests.Webhooks;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

/// <summary>
/// Every SQLite connection the server opens carries its settings: a page cache large enough for the indexes a batch
/// of events inserts into, temporary data in memory, and a log checkpointed on a thread of its own, not by the writers.
/// Commits go to the log without waiting for the disk, and the log is flushed after the writer's turn, before the
/// committer goes on.
/// </summary>
public sealed class SqliteConnectionSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("referloop-settings-").FullName;

    [Fact]
    public async Task A_connection_opened_through_the_storage_setup_has_the_write_path_settings()
    {
        await using var services = Storage("settings.db");
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await db.Database.OpenConnectionAsync();

        Assert.Equal(SqliteWriteQueue.WalCheckpointPages, await PragmaAsync(db, "wal_autocheckpoint"));
        Assert.Equal(-SqliteWriteQueue.CacheKibibytes, await PragmaAsync(db, "cache_size"));
        Assert.Equal(2, await PragmaAsync(db, "temp_store")); // MEMORY
        Assert.Equal(SqliteWriteQueue.WalSizeLimitBytes, await PragmaAsync(db, "journal_size_limit"));
    }

    [Fact]
    public async Task The_log_is_copied_into_the_database_file_in_the_background_once_something_was_written()
    {
        await using var services = Storage("checkpoint.db");
        var checkpointer = services.GetServices<IHostedService>().OfType<SqliteCheckpointer>().Single();
        await checkpointer.StartAsync(CancellationToken.None);
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // Held open until the end: when the last connection to a database closes (another test clearing the pools
        // closes idle ones), SQLite checkpoints the log itself and removes it, and there is nothing left to copy.
        await db.Database.OpenConnectionAsync();
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL");
        await db.Database.ExecuteSqlRawAsync("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)");
        for (var i = 0; i < 20; i++)
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            await db.Database.ExecuteSqlRawAsync("INSERT INTO notes (text) SELECT hex(randomblob(500)) FROM (SELECT 1 UNION ALL SELECT 2)");
            await transaction.CommitAsync();
        }

        // Far below the writers' own threshold: only the checkpointer copies these pages.
        await Eventually.TrueAsync(() => Task.FromResult(checkpointer.Last is { LogPages: > 0 } last && last.Copied == last.LogPages),
            TimeSpan.FromSeconds(10), () => $"last checkpoint: {checkpointer.Last}");
        Assert.True(checkpointer.Last!.Value.LogPages < SqliteWriteQueue.WalCheckpointPages);
        await checkpointer.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_checkpoint_in_the_writers_turn_copies_what_a_write_added_during_the_one_before_and_the_next_write_starts_the_log_again()
    {
        await LoggedDatabaseAsync("restart.db");
        await using var services = Storage("restart.db");
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await db.Database.OpenConnectionAsync();
        var writes = db.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()!.Interceptors!.OfType<SqliteWriteQueue>().Single();
        await using var checkpoints = new SqliteConnection($"Data Source={Path.Combine(_directory, "restart.db")};Pooling=False");
        await checkpoints.OpenAsync();
        const string insert = "INSERT INTO notes (text) SELECT hex(randomblob(500)) FROM (SELECT 1 UNION ALL SELECT 2)";
        for (var i = 0; i < 20; i++)
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            await db.Database.ExecuteSqlRawAsync(insert);
            await transaction.CommitAsync();
        }

        // A write that began before a checkpoint copied the log to its end appends to it when it commits.
        var during = await db.Database.BeginTransactionAsync();
        var first = SqliteCheckpointer.Checkpoint(checkpoints);
        Assert.Equal(first.LogPages, first.Copied);
        await db.Database.ExecuteSqlRawAsync(insert);

        // The writer's turn waits for that write, and no other runs meanwhile; it does not count as a write.
        var before = writes.WritesDone;
        var between = writes.BetweenWritesAsync(() => SqliteCheckpointer.Checkpoint(checkpoints), CancellationToken.None);
        await Task.Delay(100);
        Assert.False(between.IsCompleted);
        await during.CommitAsync();
        await during.DisposeAsync();
        var last = await between;
        Assert.True(last.LogPages > first.LogPages, $"{last} after {first}");
        Assert.Equal(last.LogPages, last.Copied);
        Assert.Equal(before + 1, writes.WritesDone);

        // The log copied to its end: the next write starts it again from its beginning.
        await db.Database.ExecuteSqlRawAsync(insert);
        var restarted = SqliteCheckpointer.Checkpoint(checkpoints);
        Assert.InRange(restarted.LogPages, 1, first.LogPages - 1);
    }

    [Theory]
    [InlineData(5_000, 0, 100.0, false)]      // nothing written: never, however long ago the last one was
    [InlineData(1_000, 1, 0.0, true)]         // a second since the last one, and something was written
    [InlineData(200, 10, 50.0, false)]        // about 500 pages in the log: not yet
    [InlineData(200, 100, 50.0, true)]        // about 5,000 pages: sooner than a second
    [InlineData(999, 4_095, 1.0, false)]
    [InlineData(999, 4_096, 1.0, true)]
    public void A_checkpoint_is_due_once_a_second_or_sooner_when_the_log_holds_its_target_of_pages(
        int sinceMilliseconds, long writesSince, double pagesPerWrite, bool due)
    {
        Assert.Equal(due, SqliteCheckpointer.Due(TimeSpan.FromMilliseconds(sinceMilliseconds), writesSince, pagesPerWrite));
    }

    [Theory]
    [InlineData(null, false, 2_000, 100, 20.0)]     // the first checkpoint: the log is what the writes wrote
    [InlineData(500, true, 2_000, 100, 20.0)]       // the last one ended in the writer's turn: the log started again
    [InlineData(1_500, false, 2_000, 100, 5.0)]     // otherwise the log kept what it found: only what was added since counts
    [InlineData(1_500, false, 900, 100, 9.0)]       // shorter than it was: it started again after a checkpoint that met no write
    [InlineData(null, false, 50, 100, 1.0)]         // at least a page a write
    [InlineData(null, false, -1, 100, null)]        // no log (another checkpoint ran, or the database keeps none)
    [InlineData(null, false, 2_000, 3, null)]       // too few writes to go by
    public void The_pages_per_write_come_from_what_the_log_gained_since_the_last_checkpoint(
        int? lastLog, bool restarts, int log, long writes, double? pagesPerWrite)
    {
        (int, int, bool)? last = lastLog is { } l ? (l, l, restarts) : null;

        Assert.Equal(pagesPerWrite, SqliteCheckpointer.PagesPerWrite(last, log, writes));
    }

    [Fact]
    public async Task On_a_logged_database_a_commit_does_not_wait_for_the_disk_and_the_log_is_flushed_before_the_committer_goes_on()
    {
        var log = await LoggedDatabaseAsync("durable.db");
        await using var services = Storage("durable.db");
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await db.Database.OpenConnectionAsync();
        var flush = Flush(db);
        Assert.Equal(log, flush.LogPath);
        Assert.Equal(1, await PragmaAsync(db, "synchronous")); // NORMAL: the commit itself does not flush

        var before = flush.Flushes;
        await using (var transaction = await db.Database.BeginTransactionAsync())
        {
            await db.Database.ExecuteSqlRawAsync("INSERT INTO notes (text) VALUES ('in a transaction')");
            await transaction.CommitAsync();
        }
        Assert.True(flush.Flushes > before, "a commit returned before the log was flushed");

        before = flush.Flushes;
        await db.Database.ExecuteSqlRawAsync("INSERT INTO notes (text) VALUES ('on its own')");
        Assert.True(flush.Flushes > before, "a write outside a transaction returned before the log was flushed");

        before = flush.Flushes;
        await db.Database.ExecuteSqlRawAsync("SELECT count(*) FROM notes");
        Assert.Equal(before, flush.Flushes);
    }

    [Fact]
    public async Task A_database_without_the_log_keeps_flushing_in_every_commit_until_it_is_switched_to_the_log()
    {
        // Rollback journal: NORMAL would leave its commits undurable, with no log to flush after them.
        await using var services = Storage("journal.db");
        await using (var scope = services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            await db.Database.OpenConnectionAsync();
            Assert.Equal(2, await PragmaAsync(db, "synchronous")); // FULL
            // As the start does on a new file, on the same pooled connection.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL");
        }
        await using (var scope = services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            await db.Database.OpenConnectionAsync();
            Assert.Equal(1, await PragmaAsync(db, "synchronous")); // NORMAL
        }
    }

    [Fact]
    public async Task Callers_that_wait_for_a_flush_together_share_one_and_a_missing_log_needs_none()
    {
        var path = await LoggedDatabaseAsync("shared.db");
        var flush = new SqliteLogFlush(path);

        // Called at once, while the first flush is starting or running: the rest wait for the next one together.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => flush.FlushAsync()).ToList());
        Assert.InRange(flush.Flushes, 1, 10);

        // SQLite removes the log when its last connection closes, after copying it into the database file.
        await new SqliteLogFlush(Path.Combine(_directory, "gone.db-wal")).FlushAsync();
        await new SqliteLogFlush(null).FlushAsync();
    }

    [Fact]
    public async Task A_database_reached_through_a_link_has_the_log_beside_the_file_it_names_flushed()
    {
        var log = await LoggedDatabaseAsync("target.db");
        var linked = Path.Combine(_directory, "link.db");
        File.CreateSymbolicLink(linked, Path.Combine(_directory, "target.db"));
        await using var services = Storage("link.db");
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await db.Database.OpenConnectionAsync();
        var flush = Flush(db);

        Assert.Equal(log, flush.LogPath);
        Assert.Equal(1, await PragmaAsync(db, "synchronous"));
        var before = flush.Flushes;
        await db.Database.ExecuteSqlRawAsync("INSERT INTO notes (text) VALUES ('through the link')");
        Assert.True(flush.Flushes > before);
    }

    [Fact]
    public async Task After_a_failed_flush_every_flush_fails()
    {
        // A folder where the log should be: opening it to flush fails.
        var path = Path.Combine(_directory, "broken.db-wal");
        Directory.CreateDirectory(path);
        var flush = new SqliteLogFlush(path);
        await Assert.ThrowsAnyAsync<Exception>(flush.FlushAsync);

        // The kernel may have dropped what it could not write: a flush that works now proves nothing about it.
        Directory.Delete(path);
        await File.WriteAllTextAsync(path, "");
        var later = await Assert.ThrowsAsync<IOException>(flush.FlushAsync);
        Assert.Contains("failed before", later.Message);
        Assert.Throws<IOException>(flush.Flush);
    }

    /// <summary>A database in WAL mode with a table, made outside the server's pool; returns its log file.</summary>
    private async Task<string> LoggedDatabaseAsync(string file)
    {
        var path = Path.Combine(_directory, file);
        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode=WAL; CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)";
            await command.ExecuteNonQueryAsync();
        }
        return path + "-wal";
    }

    private static SqliteLogFlush Flush(DbContext db) =>
        db.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()!.Interceptors!.OfType<SqliteWriteQueue>().Single().Log;

    /// <summary>The storage the server sets up, on a file of this test's folder.</summary>
    private ServiceProvider Storage(string file)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:Provider"] = "sqlite",
            ["ConnectionStrings:Referloop"] = $"Data Source={Path.Combine(_directory, file)}",
        }).Build();
        return new ServiceCollection().AddLogging().AddReferloopStorage(configuration).BuildServiceProvider();
    }

    private static async Task<long> PragmaAsync(ReferloopDb db, string name)
    {
        await using var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = $"PRAGMA {name}";
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
