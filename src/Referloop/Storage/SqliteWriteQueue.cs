using System.Collections.Concurrent;
using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using SQLitePCL;

namespace Referloop.Storage;

/// <summary>
/// SQLite allows one writer at a time. Left to contend, a writer that finds the database locked gets SQLITE_BUSY and
/// Microsoft.Data.Sqlite retries it after a fixed sleep, so under load writers spend most of their time asleep while
/// the lock sits free. The writers of this process queue here instead, in order and without sleeping: a transaction
/// from its start until it commits, rolls back or closes its connection, and a write statement outside a transaction
/// for as long as it runs (SQLite's compiler says which statements write). Anything else (another process on the same
/// file) meets SQLite's own busy handler.
/// <para>
/// A commit gives up the turn before it is durable: the connections commit to the log without waiting for the disk
/// (<c>synchronous=NORMAL</c>), and the committer then waits for <see cref="SqliteLogFlush"/> to flush the log while
/// the next writer already works.
/// </para>
/// </summary>
internal sealed class SqliteWriteQueue(SqliteLogFlush log) : DbTransactionInterceptor, IDbConnectionInterceptor, IDbCommandInterceptor
{
    private const int BusyTimeoutMilliseconds = 30_000;

    /// <summary>The page cache of each connection: 8 MiB.</summary>
    internal const int CacheKibibytes = 8 * 1024;

    /// <summary>
    /// All of SQLite's memory in this process, caches of every pooled connection included: past it, a connection
    /// reuses its own pages instead of growing. The writers' caches fill first and stay warm.
    /// </summary>
    private const long SoftHeapLimitBytes = 32L * 1024 * 1024;

    /// <summary>
    /// Log pages after which a commit checkpoints (SQLite's default is 1,000): 64 MiB of 4 KiB pages. A backstop only:
    /// <see cref="SqliteCheckpointer"/> checkpoints on a thread of its own long before.
    /// </summary>
    internal const int WalCheckpointPages = 16_000;

    /// <summary>
    /// What the log file is cut back to when it restarts after having grown past it (a long read held it): above the
    /// log at <see cref="WalCheckpointPages"/>, so that the logs <see cref="SqliteCheckpointer"/> restarts are never
    /// cut back (cutting one back to 32 MiB took its commit 20 ms, in the writer's turn).
    /// </summary>
    internal const long WalSizeLimitBytes = 64L * 1024 * 1024;

    private readonly SemaphoreSlim _writer = new(1, 1);
    private long _writes;
    private readonly ConditionalWeakTable<DbConnection, object> _holders = [];
    private readonly ConditionalWeakTable<DbCommand, object> _statements = [];
    private readonly ConditionalWeakTable<sqlite3, object> _configuredHandles = [];
    private readonly ConditionalWeakTable<sqlite3, object> _loggedHandles = [];
    private readonly ConcurrentDictionary<string, bool> _writesByText = new();

    /// <summary>Statement texts remembered at most (EF Core's statements are a fixed set; this only bounds a surprise).</summary>
    private const int MaxRemembered = 10_000;

    /// <summary>Transactions and write statements that have let go of the writer's turn since the start.</summary>
    public long WritesDone => Interlocked.Read(ref _writes);

    /// <summary>Where commits become durable.</summary>
    public SqliteLogFlush Log => log;

    /// <summary>
    /// Runs <paramref name="work"/> in the writer's turn, with no write of this process running meanwhile; not counted
    /// as a write (<see cref="WritesDone"/>).
    /// </summary>
    public async Task<T> BetweenWritesAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            return work();
        }
        finally
        {
            _writer.Release();
        }
    }

    // ---------------------------------------------------------------- connections

    public void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Configure(connection);

    public Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Configure(connection);
        return Task.CompletedTask;
    }

    // EF opens and closes the connection around every statement outside a transaction. The settings belong to the
    // native handle, which the pool keeps across opens, so each is set once per handle.
    private void Configure(DbConnection connection)
    {
        if (connection is not SqliteConnection { Handle: { } handle })
        {
            return;
        }
        // Commits do not wait for the disk; SqliteLogFlush flushes the log after the writer's turn. Only in WAL mode
        // (with a rollback journal, NORMAL would leave commits undurable with nothing flushing them) and only when the
        // log SQLite writes is the file flushed (SQLite follows links to the database file). A new file is switched
        // to WAL at start, on a connection opened before: until then, each open asks again.
        if (log.LogPath is not null && !_loggedHandles.TryGetValue(handle, out _) && JournalMode(handle) == "wal"
            && raw.sqlite3_db_filename(handle, "main").utf8_to_string() + "-wal" == log.LogPath)
        {
            raw.sqlite3_exec(handle, "PRAGMA synchronous=NORMAL");
            _loggedHandles.AddOrUpdate(handle, handle);
        }
        if (!_configuredHandles.TryGetValue(handle, out _))
        {
            raw.sqlite3_busy_timeout(handle, BusyTimeoutMilliseconds);
            // SQLite's default page cache (2 MB) holds too little of the indexes a batch of events inserts into at
            // random places (e-mails, order ids): every batch read most of its pages again from the file, one
            // system call each. The cache fills only as far as pages are used.
            raw.sqlite3_exec(handle, $"PRAGMA cache_size=-{CacheKibibytes}");
            // Process-wide; set here, where SQLite is surely loaded, and the same each time.
            raw.sqlite3_soft_heap_limit64(SoftHeapLimitBytes);
            // Statement journals (of multi-row inserts in a transaction) and temporary sorting stay in memory instead
            // of going through temporary files.
            raw.sqlite3_exec(handle, "PRAGMA temp_store=MEMORY");
            // A commit that leaves more than this many pages in the log copies them into the database file (a
            // checkpoint) in the writer's time: only should the checkpointer fall far behind.
            raw.sqlite3_wal_autocheckpoint(handle, WalCheckpointPages);
            raw.sqlite3_exec(handle, $"PRAGMA journal_size_limit={WalSizeLimitBytes}");
            _configuredHandles.AddOrUpdate(handle, handle);
        }
    }

    private static string? JournalMode(sqlite3 handle)
    {
        if (raw.sqlite3_prepare_v2(handle, "PRAGMA journal_mode", out var statement) != raw.SQLITE_OK)
        {
            statement.Dispose();
            return null;
        }
        using (statement)
        {
            return raw.sqlite3_step(statement) == raw.SQLITE_ROW ? raw.sqlite3_column_text(statement, 0).utf8_to_string() : null;
        }
    }

    // ---------------------------------------------------------------- write statements outside a transaction

    public async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        await EnterStatementAsync(command, cancellationToken);
        return result;
    }

    public InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        EnterStatement(command);
        return result;
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        if (LeaveStatement(command))
        {
            log.Flush();
        }
        return result;
    }

    public async ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result,
        CancellationToken cancellationToken = default)
    {
        if (LeaveStatement(command))
        {
            await log.FlushAsync();
        }
        return result;
    }

    public async ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        await EnterStatementAsync(command, cancellationToken);
        return result;
    }

    public InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
    {
        EnterStatement(command);
        return result;
    }

    public object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        if (LeaveStatement(command))
        {
            log.Flush();
        }
        return result;
    }

    public async ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result,
        CancellationToken cancellationToken = default)
    {
        if (LeaveStatement(command))
        {
            await log.FlushAsync();
        }
        return result;
    }

    // A statement read through a reader (UPDATE … RETURNING, an insert with generated values) writes until the reader closes.
    public async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        await EnterStatementAsync(command, cancellationToken);
        return result;
    }

    public InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        EnterStatement(command);
        return result;
    }

    public InterceptionResult DataReaderDisposing(DbCommand command, DataReaderDisposingEventData eventData, InterceptionResult result)
    {
        if (LeaveStatement(command))
        {
            // Disposing has no asynchronous callback: this thread waits for the flush.
            log.Flush();
        }
        return result;
    }

    public void CommandFailed(DbCommand command, CommandErrorEventData eventData) => LeaveStatement(command);

    public Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        LeaveStatement(command);
        return Task.CompletedTask;
    }

    public void CommandCanceled(DbCommand command, CommandEndEventData eventData) => LeaveStatement(command);

    public Task CommandCanceledAsync(DbCommand command, CommandEndEventData eventData, CancellationToken cancellationToken = default)
    {
        LeaveStatement(command);
        return Task.CompletedTask;
    }

    private async ValueTask EnterStatementAsync(DbCommand command, CancellationToken cancellationToken)
    {
        if (command.Transaction is null && IsWrite(command))
        {
            await _writer.WaitAsync(cancellationToken);
            _statements.AddOrUpdate(command, command);
        }
    }

    private void EnterStatement(DbCommand command)
    {
        if (command.Transaction is null && IsWrite(command))
        {
            _writer.Wait();
            _statements.AddOrUpdate(command, command);
        }
    }

    /// <summary>Gives up the turn a write statement outside a transaction held; false when it held none.</summary>
    private bool LeaveStatement(DbCommand command)
    {
        if (!_statements.Remove(command))
        {
            return false;
        }
        Interlocked.Increment(ref _writes);
        _writer.Release();
        return true;
    }

    // Statements outside a transaction (EF Core runs a one-row save or an ExecuteUpdate without one) queue when SQLite
    // says they write; it is asked once per statement text.
    private bool IsWrite(DbCommand command)
    {
        if (_writesByText.TryGetValue(command.CommandText, out var writes))
        {
            return writes;
        }
        if (command.Connection is not SqliteConnection { Handle: { } handle } || Writes(handle, command.CommandText) is not { } judged)
        {
            return true;
        }
        if (_writesByText.Count < MaxRemembered)
        {
            _writesByText.TryAdd(command.CommandText, judged);
        }
        return judged;
    }

    /// <summary>
    /// Whether any statement of <paramref name="sql"/> writes to the database, as SQLite's compiler sees it
    /// (<c>sqlite3_stmt_readonly</c>); null when SQLite cannot compile it, which the statement's own run will report.
    /// </summary>
    internal static bool? Writes(sqlite3 handle, string sql)
    {
        var writes = false;
        for (var rest = sql; !string.IsNullOrWhiteSpace(rest);)
        {
            var result = raw.sqlite3_prepare_v2(handle, rest, out var statement, out var tail);
            using (statement)
            {
                if (result != raw.SQLITE_OK)
                {
                    return null;
                }
                // A text that ends in a comment or a semicolon leaves an empty statement.
                writes |= statement is { IsInvalid: false } && raw.sqlite3_stmt_readonly(statement) == 0;
            }
            rest = tail;
        }
        return writes;
    }

    // ---------------------------------------------------------------- transactions

    public override async ValueTask<InterceptionResult<DbTransaction>> TransactionStartingAsync(DbConnection connection,
        TransactionStartingEventData eventData, InterceptionResult<DbTransaction> result, CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken);
        Hold(connection);
        return result;
    }

    public override InterceptionResult<DbTransaction> TransactionStarting(DbConnection connection,
        TransactionStartingEventData eventData, InterceptionResult<DbTransaction> result)
    {
        _writer.Wait();
        Hold(connection);
        return result;
    }

    public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData)
    {
        Release(eventData);
        log.Flush();
    }

    public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData,
        CancellationToken cancellationToken = default)
    {
        Release(eventData);
        return log.FlushAsync();
    }

    public override void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) =>
        Release(eventData);

    public override Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData,
        CancellationToken cancellationToken = default)
    {
        Release(eventData);
        return Task.CompletedTask;
    }

    public override void TransactionFailed(DbTransaction transaction, TransactionErrorEventData eventData) =>
        Release(eventData);

    public override Task TransactionFailedAsync(DbTransaction transaction, TransactionErrorEventData eventData,
        CancellationToken cancellationToken = default)
    {
        Release(eventData);
        return Task.CompletedTask;
    }

    // A transaction disposed without commit or rollback (an exception on the way) is rolled back by SQLite; EF then
    // closes the connection it opened for it, which is where its place in the queue is given up.
    public void ConnectionClosed(DbConnection connection, ConnectionEndEventData eventData) => Release(connection);

    public Task ConnectionClosedAsync(DbConnection connection, ConnectionEndEventData eventData)
    {
        Release(connection);
        return Task.CompletedTask;
    }

    private void Hold(DbConnection connection)
    {
        if (!_holders.TryAdd(connection, connection))
        {
            // The connection already holds the writer (a transaction ended in a way no callback reported):
            // it keeps its one place instead of taking a second.
            _writer.Release();
        }
    }

    private void Release(TransactionEventData eventData)
    {
        if ((eventData.Context?.Database.GetDbConnection() ?? eventData.Transaction?.Connection) is { } connection)
        {
            Release(connection);
        }
    }

    private void Release(DbConnection connection)
    {
        if (_holders.Remove(connection))
        {
            Interlocked.Increment(ref _writes);
            _writer.Release();
        }
    }
}
