using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

/// <summary>
/// Every SQLite connection the server opens carries its settings: a page cache large enough for the indexes a batch
/// of events inserts into, temporary data in memory, and a log that is checkpointed every few batches, not every one.
/// </summary>
public sealed class SqliteConnectionSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("referloop-settings-").FullName;

    [Fact]
    public async Task A_connection_opened_through_the_storage_setup_has_the_write_path_settings()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:Provider"] = "sqlite",
            ["ConnectionStrings:Referloop"] = $"Data Source={Path.Combine(_directory, "settings.db")}",
        }).Build();
        await using var services = new ServiceCollection().AddReferloopStorage(configuration).BuildServiceProvider();
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await db.Database.OpenConnectionAsync();

        Assert.Equal(SqliteWriteQueue.WalCheckpointPages, await PragmaAsync(db, "wal_autocheckpoint"));
        Assert.Equal(-SqliteWriteQueue.CacheKibibytes, await PragmaAsync(db, "cache_size"));
        Assert.Equal(2, await PragmaAsync(db, "temp_store")); // MEMORY
        Assert.Equal(SqliteWriteQueue.WalSizeLimitBytes, await PragmaAsync(db, "journal_size_limit"));
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
