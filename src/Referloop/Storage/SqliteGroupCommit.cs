using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Referloop.Storage;

/// <summary>
/// Group commit for SQLite: units of work that arrive while one group commits are run one after another in a single
/// transaction and committed together, so that the commit (writing every page a unit dirtied to the log, and the
/// <c>fsync</c>) is paid once for the group instead of once per unit. Nothing is acknowledged early: a unit's
/// caller resumes only once the commit holding its changes is durable.
/// <para>
/// SQLite serialises writers anyway (see <see cref="SqliteWriteQueue"/>), so running the group's units in turn on
/// one connection costs no concurrency. Each unit runs on its own context, which borrows the group's connection
/// and transaction for the length of the unit, inside a savepoint: a unit that fails is undone alone and its
/// caller gets the exception, as if its own transaction had rolled back; the others still commit.
/// </para>
/// <para>
/// One loop commits the groups: as soon as a group is committed it takes what has queued meanwhile (at most
/// <see cref="MaxUnits"/>). Callers only wait for their own unit.
/// </para>
/// </summary>
public sealed class SqliteGroupCommit : IAsyncDisposable
{
    private readonly Channel<Unit> _queue = Channel.CreateUnbounded<Unit>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _connectionString;
    private readonly SqliteWriteQueue _writer;
    private readonly Lazy<Task> _loop;
    private SqliteConnection? _connection;

    internal SqliteGroupCommit(string connectionString, SqliteWriteQueue writer, int maxUnits)
    {
        // The group's connection lives as long as the loop and carries a setting of its own (see OpenAsync), so it
        // stays out of the pool the contexts' connections come from.
        _connectionString = new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString();
        _writer = writer;
        MaxUnits = Math.Max(1, maxUnits);
        // Started by the first unit, outside that unit's execution context.
        _loop = new Lazy<Task>(() =>
        {
            using (ExecutionContext.SuppressFlow())
            {
                return Task.Run(LoopAsync);
            }
        });
    }

    /// <summary>The most units one transaction holds (<c>Database:GroupCommitMaxUnits</c>).</summary>
    public int MaxUnits { get; }

    /// <summary>
    /// Runs <paramref name="work"/> against <paramref name="db"/> inside a transaction shared with other units and
    /// returns once that transaction has committed, with the id of the transaction the context saw (the one EF
    /// Core's transaction events would have named); or throws what the work threw, or what the commit threw.
    /// </summary>
    public async Task<(T Result, Guid TransactionId)> RunAsync<T>(ReferloopDb db, Func<Task<T>> work, CancellationToken ct)
    {
        var unit = new Unit(db, async () => await work(), ExecutionContext.Capture(), ct);
        if (!_queue.Writer.TryWrite(unit))
        {
            throw new ObjectDisposedException(nameof(SqliteGroupCommit));
        }
        _ = _loop.Value;
        // Not cancellable once queued: the unit runs on this caller's context, which must outlive it.
        await unit.Done.Task;
        return ((T)unit.Result!, unit.TransactionId);
    }

    private async Task LoopAsync()
    {
        var group = new List<Unit>(MaxUnits);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (group.Count < MaxUnits && _queue.Reader.TryRead(out var next))
            {
                group.Add(next);
            }
            try
            {
                await CommitGroupAsync(group);
            }
            catch (Exception e)
            {
                // CommitGroupAsync answers its units itself; this only keeps the loop alive for the next group.
                group.ForEach(unit => unit.Done.TrySetException(e));
            }
            group.Clear();
        }
    }

    private async Task CommitGroupAsync(List<Unit> group)
    {
        await _writer.EnterAsync(CancellationToken.None);
        try
        {
            var connection = await OpenAsync();
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            foreach (var unit in group)
            {
                await RunUnitAsync(unit, transaction);
            }
            await transaction.CommitAsync();
        }
        catch (Exception e)
        {
            // Rolled back (by SQLite, or as the transaction is disposed): nothing of the group was committed, and
            // every unit of it not answered yet gets the failure (a busy database is retried by the caller).
            await DropConnectionAsync();
            group.ForEach(unit => unit.Done.TrySetException(e));
            return;
        }
        finally
        {
            _writer.Exit();
        }
        // The units that failed or were cancelled have their answer already.
        group.ForEach(unit => unit.Done.TrySetResult());
    }

    /// <summary>
    /// Runs one unit on its own context, lent the group's connection and transaction, inside a savepoint. A unit
    /// that fails is undone, and its caller gets the exception at once.
    /// </summary>
    private static async Task RunUnitAsync(Unit unit, SqliteTransaction transaction)
    {
        if (unit.Cancellation.IsCancellationRequested)
        {
            unit.Done.TrySetCanceled(unit.Cancellation);
            return;
        }
        const string savepoint = "unit";
        await transaction.SaveAsync(savepoint);
        var database = unit.Db.Database;
        var ownConnection = database.GetConnectionString();
        Exception? failure = null;
        var lent = false;
        try
        {
            database.SetDbConnection(transaction.Connection, contextOwnsConnection: false);
            lent = true;
            var used = await database.UseTransactionAsync(transaction);
            unit.TransactionId = used!.TransactionId;
            unit.Result = await RunInContextAsync(unit);
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            if (lent)
            {
                // Leaves the group's transaction alone: the context did not own it.
                if (database.CurrentTransaction is { } used)
                {
                    await used.DisposeAsync();
                }
                // A new connection of its own: lending it another disposed the one it had.
                database.SetDbConnection(new SqliteConnection(ownConnection), contextOwnsConnection: true);
            }
        }
        if (failure is not null)
        {
            await transaction.RollbackAsync(savepoint);
            await transaction.ReleaseAsync(savepoint);
            unit.Done.TrySetException(failure);
            return;
        }
        await transaction.ReleaseAsync(savepoint);
    }

    /// <summary>Runs the unit's work in its caller's execution context: its request, logging scope and activity.</summary>
    private static Task<object?> RunInContextAsync(Unit unit)
    {
        if (unit.Context is not { } context)
        {
            return unit.Work();
        }
        Task<object?> running = null!;
        ExecutionContext.Run(context, _ => running = unit.Work(), null);
        return running;
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        if (_connection is null)
        {
            var connection = new SqliteConnection(_connectionString);
            try
            {
                await connection.OpenAsync();
                _writer.SetBusyTimeout(connection);
                // Every unit runs in a savepoint, and before a unit first changes a page SQLite copies the page to the
                // savepoint's sub-journal: by default a temporary file, written with one pwrite for the page number and
                // one for the page, about twenty system calls per event while the writer is held. In memory the copy is
                // a memcpy; the sub-journal holds the pages of one open group and goes with its commit. Temporary
                // tables and sorts of the units' own queries stay in memory too: the units' queries are small.
                await using var command = connection.CreateCommand();
                command.CommandText = "PRAGMA temp_store=MEMORY;";
                await command.ExecuteNonQueryAsync();
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
            _connection = connection;
        }
        return _connection;
    }

    private async Task DropConnectionAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop.IsValueCreated)
        {
            await _loop.Value;
        }
        await DropConnectionAsync();
    }

    private sealed class Unit(ReferloopDb db, Func<Task<object?>> work, ExecutionContext? context, CancellationToken cancellation)
    {
        public ReferloopDb Db { get; } = db;
        public Func<Task<object?>> Work { get; } = work;
        public ExecutionContext? Context { get; } = context;
        public CancellationToken Cancellation { get; } = cancellation;
        public object? Result { get; set; }
        public Guid TransactionId { get; set; }
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
