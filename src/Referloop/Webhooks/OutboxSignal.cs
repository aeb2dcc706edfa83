using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Wakes the delivery engine. Many pokes before it wakes collapse into one wake-up; polling stays as the fallback
/// for work this instance did not write (other instances, retries falling due).
/// </summary>
public sealed class OutboxSignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Poke()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already poked: the engine wakes once for all of them.
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);
}

/// <summary>
/// Fans out the outbox messages a save writes, in that same save, and starts their first attempts once it is
/// committed, wherever in the code the messages were added: the first attempt goes out as soon as the change is
/// durable, with no second transaction and no wait for the delivery loop. Inside an explicit transaction the start
/// waits for the commit (before it the change may still be rolled back); a transaction that never commits starts
/// nothing. Deliveries this instance had no room to lease, and messages of a synchronous save (fanned out by the
/// loop), poke <see cref="OutboxSignal"/> instead.
/// <para>
/// Inside an explicit transaction (every unit of work of the engine) the messages and their deliveries leave the
/// change tracker and are written after the save's own statements, one statement per table: an event writes half a
/// dozen of each, and tracking, ordering and preparing one command per row was the larger part of its save. Outside
/// one they are saved as tracked entities, in the transaction EF Core makes for the save.
/// </para>
/// </summary>
public sealed class OutboxSaveInterceptor(OutboxSignal signal, IServiceProvider services) : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    /// <summary>
    /// What the interceptor keeps for one context between its calls. It lives on the context
    /// (<see cref="ReferloopDb.OutboxState"/>), which one caller uses at a time: a table keyed by context took a lock
    /// shared by every request on each save.
    /// </summary>
    internal sealed class ContextState
    {
        /// <summary>Messages added since the last save.</summary>
        public List<OutboxMessage>? Added;

        /// <summary>What the save under way fanned out.</summary>
        public Fanned? Saving;

        // With EF's id of the transaction the saves waiting for its commit were made in: providers reuse their
        // transaction objects (Npgsql does), so a transaction disposed without commit must not leave its saves to be
        // started by the next commit on the same connection.
        public PendingSaves? PendingCommit;
    }

    internal sealed record PendingSaves(Guid TransactionId, List<Fanned> Saves);

    private static ContextState? StateOf(DbContext? context) => (context as ReferloopDb)?.OutboxState;

    private DeliveryEngine? _engine;

    // Resolved on first use: the engine's own dependencies (data protection among them) may need a context to build.
    private DeliveryEngine Engine => _engine ??= services.GetRequiredService<DeliveryEngine>();

    /// <summary>
    /// What one save fanned out, or only that it wrote messages for the loop to fan out; <paramref name="Untracked"/>
    /// when the rows are left for <see cref="SavedChangesAsync"/> to write.
    /// </summary>
    internal sealed record Fanned(FanOutResult? FanOut, bool Untracked = false);

    /// <summary>
    /// Called by <see cref="Outbox"/> as it adds a message, so a save need not search the change tracker for one
    /// (which would detect changes a second time on every save).
    /// </summary>
    public static void MessageAdded(ReferloopDb context, OutboxMessage message) => (context.OutboxState.Added ??= []).Add(message);

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        // A synchronous save does not query on the caller's thread: its messages are left to the loop.
        if (eventData.Context is ReferloopDb db && TakeAdded(db) is { Count: > 0 })
        {
            db.OutboxState.Saving = new Fanned(null);
        }
        return result;
    }

    public async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (eventData.Context is ReferloopDb db && TakeAdded(db) is { Count: > 0 } messages)
        {
            var fanOut = await Engine.FanOutOnSaveAsync(db, messages, cancellationToken);
            var untracked = db.Database.CurrentTransaction is not null;
            if (untracked)
            {
                foreach (var message in messages)
                {
                    db.Entry(message).State = EntityState.Detached;
                }
            }
            else
            {
                db.WebhookDeliveries.AddRange(fanOut.Deliveries);
            }
            db.OutboxState.Saving = new Fanned(fanOut, untracked);
        }
        return result;
    }

    /// <summary>The messages added since the last save that this save writes and nobody dispatched by hand.</summary>
    private static List<OutboxMessage>? TakeAdded(ReferloopDb context)
    {
        if (context.OutboxState.Added is not { } added)
        {
            return null;
        }
        context.OutboxState.Added = null;
        // A unit of work that was cleared (a retry) or never saved leaves messages that are no longer tracked.
        return added.Where(m => m.DispatchedAt is null && context.Entry(m).State == EntityState.Added).ToList();
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        Saved(eventData.Context);
        return result;
    }

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is ReferloopDb db && db.OutboxState.Saving is { Untracked: true, FanOut: { } fanOut })
        {
            // Still in the save's transaction. Should a write fail, the save fails, and Unsaved tracks the messages again.
            await Outbox.InsertAsync(db, fanOut.Messages, cancellationToken);
            await DeliveryEngine.InsertAsync(db, fanOut.Deliveries, cancellationToken);
        }
        Saved(eventData.Context);
        return result;
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData) => Unsaved(eventData.Context);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Unsaved(eventData.Context);
        return Task.CompletedTask;
    }

    public void SaveChangesCanceled(DbContextEventData eventData) => Unsaved(eventData.Context);

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        Unsaved(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) =>
        Committed(eventData.Context, eventData.TransactionId);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Committed(eventData.Context, eventData.TransactionId);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => RolledBack(eventData);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        RolledBack(eventData);
        return Task.CompletedTask;
    }

    private void Saved(DbContext? context)
    {
        if (StateOf(context) is not { Saving: { } fanned } state)
        {
            return;
        }
        state.Saving = null;
        if (context!.Database.CurrentTransaction is not { } transaction)
        {
            Start(fanned);
            return;
        }
        if (state.PendingCommit is not { } pending || pending.TransactionId != transaction.TransactionId)
        {
            // Whatever an earlier transaction of this context left was never committed.
            pending = state.PendingCommit = new PendingSaves(transaction.TransactionId, []);
        }
        pending.Saves.Add(fanned);
    }

    /// <summary>
    /// A failed save is undone as far as the fan-out goes, so that a retry of the same save fans out afresh: its
    /// deliveries leave the context and its messages are undispatched again.
    /// </summary>
    private static void Unsaved(DbContext? context)
    {
        if (context is not ReferloopDb db || db.OutboxState.Saving is not { } fanned)
        {
            return;
        }
        db.OutboxState.Saving = null;
        if (fanned.FanOut is not { } fanOut)
        {
            return;
        }
        if (!fanned.Untracked)
        {
            foreach (var delivery in fanOut.Deliveries)
            {
                db.Entry(delivery).State = EntityState.Detached;
            }
        }
        foreach (var message in fanOut.Messages)
        {
            message.DispatchedAt = null;
            if (fanned.Untracked)
            {
                db.Entry(message).State = EntityState.Added;
            }
            MessageAdded(db, message);
        }
    }

    /// <summary>
    /// Starts what the saves of <paramref name="context"/> in transaction <paramref name="transactionId"/> fanned
    /// out, now that it is committed. EF Core reports the commits of the transactions a context begins itself; a
    /// transaction the context only used (as <see cref="SqliteGroupCommit"/> lends one) is reported by whoever
    /// committed it.
    /// </summary>
    public void Committed(DbContext? context, Guid transactionId)
    {
        if (StateOf(context) is not { PendingCommit: { } pending } state)
        {
            return;
        }
        state.PendingCommit = null;
        if (pending.TransactionId == transactionId)
        {
            pending.Saves.ForEach(Start);
        }
    }

    private static void RolledBack(TransactionEndEventData eventData)
    {
        if (StateOf(eventData.Context) is { PendingCommit: { } pending } state && pending.TransactionId == eventData.TransactionId)
        {
            state.PendingCommit = null;
        }
    }

    private void Start(Fanned fanned)
    {
        if (fanned.FanOut is { } fanOut)
        {
            Engine.Start(fanOut.Claimed);
        }
        if (fanned.FanOut is null or { LeftForLoop: true })
        {
            signal.Poke();
        }
    }
}
