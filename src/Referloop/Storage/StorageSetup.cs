using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;

namespace Referloop.Storage;

public static class StorageSetup
{
    public const string ConnectionStringName = "Referloop";

    public static IServiceCollection AddReferloopStorage(this IServiceCollection services, IConfiguration configuration)
    {
        var provider = ProviderName(configuration);
        var connectionString = configuration.GetConnectionString(ConnectionStringName);

        switch (provider)
        {
            case "sqlite":
                connectionString = PrepareSqlite(connectionString);
                var sqliteFile = new SqliteConnectionStringBuilder(connectionString);
                var writeQueue = new SqliteWriteQueue(new SqliteLogFlush(IsInMemory(sqliteFile) ? null : LogFile(sqliteFile.DataSource)));
                services.AddDbContextPool<ReferloopDb, SqliteReferloopDb>((services, options) => options
                    .UseSqlite(connectionString, sqlite => sqlite.MigrationsHistoryTable("__migrations"))
                    .AddInterceptors(writeQueue)
                    .AddInterceptors(services.GetServices<IInterceptor>()));
                if (!IsInMemory(sqliteFile))
                {
                    var sqlite = connectionString;
                    services.AddHostedService(provider => new SqliteCheckpointer(sqlite, writeQueue,
                        provider.GetRequiredService<ILogger<SqliteCheckpointer>>()));
                }
                break;
            case "postgres" or "postgresql":
                if (string.IsNullOrWhiteSpace(connectionString))
                {
                    throw new InvalidOperationException(
                        "Database:Provider is 'postgres' but ConnectionStrings:Referloop is empty. " +
                        "Set it, e.g. Referloop__ConnectionStrings__Referloop=\"Host=db;Database=referloop;Username=referloop;Password=…\".");
                }
                connectionString = PreparePostgres(connectionString);
                services.AddDbContextPool<ReferloopDb, PostgresReferloopDb>((services, options) => options
                    .UseNpgsql(connectionString, npgsql => npgsql.MigrationsHistoryTable("__migrations"))
                    .AddInterceptors(services.GetServices<IInterceptor>()));
                services.AddSingleton<PostgresStatistics>();
                services.AddHostedService(provider => provider.GetRequiredService<PostgresStatistics>());
                break;
            default:
                throw new InvalidOperationException(
                    $"Database:Provider '{provider}' is not supported; use 'sqlite' (the default) or 'postgres'.");
        }
        return services;
    }

    /// <summary><c>Database:Provider</c> as configured, lower case; <c>sqlite</c> when it is not set.</summary>
    public static string ProviderName(IConfiguration configuration) =>
        (configuration["Database:Provider"] ?? "sqlite").Trim().ToLowerInvariant();

    /// <summary>Applies pending migrations; SQLite is also switched to write-ahead logging.</summary>
    public static async Task MigrateDatabaseAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        if (db.OnSqlite)
        {
            // WAL is a property of the database file, so setting it once is enough; readers then never block the writer.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
        await db.Database.MigrateAsync(cancellationToken);
    }

    /// <summary>Statements each PostgreSQL connection keeps prepared when the connection string does not say.</summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>
    /// Npgsql prepares nothing unless its connection string sets <c>Max Auto Prepare</c>; then each connection
    /// prepares the statements it runs most (after five runs), and PostgreSQL stops parsing and planning them again
    /// for every event. Referloop runs a small, fixed set of statements, so it sets <see cref="DefaultMaxAutoPrepare"/>
    /// unless the connection string names the setting itself (<c>Max Auto Prepare=0</c> turns it off, e.g. behind a
    /// pooler that cannot keep prepared statements).
    /// </summary>
    public static string PreparePostgres(string connectionString)
    {
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.Keys.Cast<string>().Any(key => key.Replace(" ", "").Equals("MaxAutoPrepare", StringComparison.OrdinalIgnoreCase)))
        {
            return connectionString;
        }
        return new NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = DefaultMaxAutoPrepare }.ConnectionString;
    }

    /// <summary>Where SQLite keeps the log of a database file: beside the file a link to it names.</summary>
    private static string LogFile(string database) =>
        ((File.Exists(database) ? File.ResolveLinkTarget(database, returnFinalTarget: true)?.FullName : null) ?? database) + "-wal";

    private static bool IsInMemory(SqliteConnectionStringBuilder builder) =>
        builder.Mode == SqliteOpenMode.Memory || builder.DataSource.StartsWith(':');

    private static string PrepareSqlite(string? connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(
            string.IsNullOrWhiteSpace(connectionString) ? "Data Source=data/referloop.db" : connectionString);
        if (!IsInMemory(builder))
        {
            var path = Path.GetFullPath(builder.DataSource);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            builder.DataSource = path;
        }
        builder.Pooling = true;
        // The commands' timeout, in seconds. Writers of this process queue in SqliteWriteQueue; SQLite's busy handler
        // (set there) waits for another process holding the file.
        builder.DefaultTimeout = 30;
        return builder.ToString();
    }
}
