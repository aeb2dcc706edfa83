using System.Data.Common;
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Referloop.Bench;

/// <summary>One column of a table as the migrated schema has it.</summary>
internal sealed record Column(string Name, string Type, bool NotNull, bool HasDefault);

/// <summary>
/// The database a provider's run uses, reached directly (not through Referloop): reset between runs, the bare-insert
/// ceiling, fast seeding and a few checks.
/// </summary>
internal abstract class BenchDatabase
{
    public abstract string Provider { get; }

    /// <summary>The settings Referloop is started with to use this database.</summary>
    public abstract IReadOnlyDictionary<string, string?> ServerEnvironment { get; }

    public abstract Task ResetAsync(CancellationToken ct);

    public abstract DbConnection Open();

    public abstract Task<IReadOnlyList<Column>> ColumnsAsync(string table, CancellationToken ct);

    /// <summary>An expression that counts 1..<paramref name="count"/> as <c>n</c>, to select seed rows from.</summary>
    public abstract string Sequence(long count);

    /// <summary>A zero-padded decimal rendering of <c>n</c>, so seeded ids sort like the real ones.</summary>
    public abstract string Padded(string expression, int width);

    /// <summary>An instant <paramref name="millisecondsBack"/> (an SQL expression) before <paramref name="now"/>, as the column stores it.</summary>
    public abstract string Instant(DateTimeOffset now, string millisecondsBack);

    /// <summary>Wraps a value for a column of the given type (PostgreSQL needs casts from text; SQLite does not).</summary>
    public abstract string Cast(string expression, Column column);

    public abstract Task AfterSeedAsync(IEnumerable<string> tables, CancellationToken ct);

    public async Task<long> ScalarAsync(string sql, CancellationToken ct)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = 600;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct) ?? 0L);
    }

    public async Task<int> ExecuteAsync(string sql, CancellationToken ct, bool bulk = false)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        if (bulk)
        {
            command.CommandText = BulkSettings;
            await command.ExecuteNonQueryAsync(ct);
        }
        command.CommandText = sql;
        command.CommandTimeout = 1200;
        return await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Session settings for seeding: the seed is one big transaction, not something measured.</summary>
    protected abstract string BulkSettings { get; }

    /// <summary>
    /// The bare-insert ceiling: <paramref name="concurrency"/> loops, each on its own connection, insert ~500-byte rows
    /// into a scratch table of the same database for the duration, <paramref name="rowsPerTransaction"/> rows per
    /// commit. Returns rows/s.
    /// </summary>
    public async Task<double> InsertCeilingAsync(int concurrency, int rowsPerTransaction, TimeSpan warmup, TimeSpan duration,
        CancellationToken ct)
    {
        await ExecuteAsync("DROP TABLE IF EXISTS bench_ceiling", ct);
        await ExecuteAsync("CREATE TABLE bench_ceiling (id VARCHAR(40) PRIMARY KEY, campaign VARCHAR(40) NOT NULL, body TEXT NOT NULL, created BIGINT NOT NULL)", ct);
        var body = new string('x', 420);
        long rows = 0;
        var measuring = false;
        // SQLite has one writer at a time. Left to contend, Microsoft.Data.Sqlite answers SQLITE_BUSY by sleeping before
        // it retries, and the figure would measure those sleeps; the loops take turns instead, as an application would.
        using var writer = SingleWriter ? new SemaphoreSlim(1) : null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var workers = Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            await using var connection = Open();
            await using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO bench_ceiling (id, campaign, body, created) VALUES (@id, @campaign, @body, @created)";
            command.CommandTimeout = 60;
            var id = Parameter(command, "id");
            Parameter(command, "campaign").Value = "cmp_0000000000000000000000000000bench";
            Parameter(command, "body").Value = body;
            var created = Parameter(command, "created");
            // Prepared once, as a raw ceiling should be: SQLite prepares a command's statement anyway, and PostgreSQL
            // then parses and plans the insert once per connection instead of once per row.
            id.Value = "";
            created.Value = 0L;
            await command.PrepareAsync(ct);
            for (var n = 0L; !stop.IsCancellationRequested;)
            {
                try
                {
                    if (writer is not null)
                    {
                        await writer.WaitAsync(stop.Token);
                    }
                    try
                    {
                        await using var transaction = rowsPerTransaction > 1 ? await connection.BeginTransactionAsync(stop.Token) : null;
                        command.Transaction = transaction;
                        for (var i = 0; i < rowsPerTransaction; i++, n++)
                        {
                            id.Value = $"row_{worker:D4}_{n:D28}";
                            created.Value = Stopwatch.GetTimestamp();
                            await command.ExecuteNonQueryAsync(stop.Token);
                        }
                        if (transaction is not null)
                        {
                            await transaction.CommitAsync(stop.Token);
                        }
                    }
                    finally
                    {
                        writer?.Release();
                    }
                }
                catch (Exception e) when (stop.IsCancellationRequested && e is OperationCanceledException or DbException)
                {
                    return;
                }
                if (Volatile.Read(ref measuring))
                {
                    Interlocked.Add(ref rows, rowsPerTransaction);
                }
            }
        }, CancellationToken.None)).ToList();
        await Task.WhenAny(Task.Delay(warmup, ct), Task.WhenAll(workers));
        Volatile.Write(ref measuring, true);
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAny(Task.Delay(duration, ct), Task.WhenAll(workers));
        Volatile.Write(ref measuring, false);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        await ExecuteAsync("DROP TABLE IF EXISTS bench_ceiling", ct);
        return Interlocked.Read(ref rows) / seconds;
    }

    protected virtual bool SingleWriter => false;

    private static DbParameter Parameter(DbCommand command, string name)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        command.Parameters.Add(parameter);
        return parameter;
    }

    /// <summary>
    /// The provider's database; <paramref name="name"/> tells apart the databases of two servers run side by side (a
    /// folder of its own on SQLite, a schema of its own on PostgreSQL).
    /// </summary>
    public static BenchDatabase Create(string provider, Settings settings, string tempDir, string? name = null) => provider switch
    {
        "sqlite" => new SqliteBenchDatabase(Path.Combine(tempDir, name is null ? "sqlite" : $"sqlite-{name}", "referloop.db")),
        _ => new PostgresBenchDatabase(settings.PostgresConnection, name is null ? "public" : $"bench_{name}"),
    };
}

internal sealed class SqliteBenchDatabase(string path) : BenchDatabase
{
    public override string Provider => "sqlite";

    protected override bool SingleWriter => true;

    // A large page cache keeps index pages in memory while a million rows go in.
    protected override string BulkSettings => "PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY; PRAGMA synchronous=OFF;";

    private string ConnectionString => new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 60, Pooling = false }.ToString();

    public override IReadOnlyDictionary<string, string?> ServerEnvironment => new Dictionary<string, string?>
    {
        ["Database__Provider"] = "sqlite",
        ["ConnectionStrings__Referloop"] = $"Data Source={path}",
    };

    public override Task ResetAsync(CancellationToken ct)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
        Directory.CreateDirectory(folder);
        return Task.CompletedTask;
    }

    public override DbConnection Open()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        // The same settings as the server's file: write-ahead log, and every commit durable.
        command.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
        command.ExecuteNonQuery();
        return connection;
    }

    public override async Task<IReadOnlyList<Column>> ColumnsAsync(string table, CancellationToken ct)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT name, type, \"notnull\", dflt_value IS NOT NULL FROM pragma_table_info('{table}')";
        var columns = new List<Column>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            columns.Add(new Column(reader.GetString(0), reader.GetString(1), reader.GetInt64(2) != 0, reader.GetInt64(3) != 0));
        }
        return columns;
    }

    public override string Sequence(long count) =>
        $"(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {count}) SELECT n FROM seq)";

    public override string Padded(string expression, int width) => $"printf('%0{width}d', {expression})";

    // Referloop keeps SQLite instants as UTC ticks (Storage/UtcTicksConverter.cs).
    public override string Instant(DateTimeOffset now, string millisecondsBack) => $"({now.UtcTicks} - ({millisecondsBack}) * 10000)";

    public override string Cast(string expression, Column column) => expression;

    public override async Task AfterSeedAsync(IEnumerable<string> tables, CancellationToken ct)
    {
        // No ANALYZE: the server never runs it, so its queries must find their indexes without statistics, and the
        // growth figures must show it when they do not.
        await ExecuteAsync("PRAGMA wal_checkpoint(TRUNCATE)", ct);
    }
}

internal sealed class PostgresBenchDatabase(string baseConnectionString, string schema) : BenchDatabase
{
    private readonly string connectionString = schema == "public"
        ? baseConnectionString
        : new NpgsqlConnectionStringBuilder(baseConnectionString) { SearchPath = schema }.ToString();

    public override string Provider => "postgres";

    protected override string BulkSettings => "SET synchronous_commit = off; SET work_mem = '64MB';";

    public override IReadOnlyDictionary<string, string?> ServerEnvironment => new Dictionary<string, string?>
    {
        ["Database__Provider"] = "postgres",
        ["ConnectionStrings__Referloop"] = connectionString,
    };

    public override async Task ResetAsync(CancellationToken ct)
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            // The database owner owns its public schema (PostgreSQL 15+), so this needs no superuser.
            await ExecuteAsync($"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};", ct);
        }
        catch (NpgsqlException e)
        {
            throw new BenchException($"PostgreSQL at '{Redacted}' cannot be reset ({e.Message}). ./bench.sh creates the role and " +
                "database referloop_bench; with REFERLOOP_BENCH_PG, point it at a database its user owns.");
        }
    }

    private string Redacted => new NpgsqlConnectionStringBuilder(connectionString) { Password = null }.ToString();

    public override DbConnection Open()
    {
        var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        return connection;
    }

    public override async Task<IReadOnlyList<Column>> ColumnsAsync(string table, CancellationToken ct)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
            FROM pg_attribute a WHERE a.attrelid = to_regclass('{schema}.{table}') AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """;
        var columns = new List<Column>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            columns.Add(new Column(reader.GetString(0), reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3)));
        }
        return columns;
    }

    public override string Sequence(long count) => $"(SELECT n FROM generate_series(1, {count}) AS n)";

    public override string Padded(string expression, int width) => $"lpad(({expression})::text, {width}, '0')";

    public override string Instant(DateTimeOffset now, string millisecondsBack) =>
        $"(TIMESTAMPTZ '{now.UtcDateTime:yyyy-MM-dd HH:mm:ss.ffffff}+00' - ({millisecondsBack}) * INTERVAL '1 millisecond')";

    public override string Cast(string expression, Column column) => $"CAST({expression} AS {column.Type})";

    public override async Task AfterSeedAsync(IEnumerable<string> tables, CancellationToken ct)
    {
        foreach (var table in tables)
        {
            await ExecuteAsync($"VACUUM ANALYZE {table}", ct);
        }
    }
}
