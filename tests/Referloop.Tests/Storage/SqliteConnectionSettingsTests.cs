using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Referloop.Tests.Webhooks;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

/// <summary>
/// Every SQLite connection the server opens carries its settings: a page cache large enough for the indexes a batch
/// of events inserts into, temporary data in memory, and a log checkpointed on a thread of its own, not by the writers.
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
        await using (var scope = services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL");
            await db.Database.ExecuteSqlRawAsync("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)");
            for (var i = 0; i < 20; i++)
            {
                await using var transaction = await db.Database.BeginTransactionAsync();
                await db.Database.ExecuteSqlRawAsync("INSERT INTO notes (text) SELECT hex(randomblob(500)) FROM (SELECT 1 UNION ALL SELECT 2)");
                await transaction.CommitAsync();
            }
        }

        // Far below the writers' own threshold: only the checkpointer copies these pages.
        await Eventually.TrueAsync(() => Task.FromResult(checkpointer.Last is { LogPages: > 0 } last && last.Copied == last.LogPages),
            TimeSpan.FromSeconds(10), () => $"last checkpoint: {checkpointer.Last}");
        Assert.True(checkpointer.Last!.Value.LogPages < SqliteWriteQueue.WalCheckpointPages);
        await checkpointer.StopAsync(CancellationToken.None);
    }

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
