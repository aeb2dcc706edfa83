using System.Data.Common;
using System.Runtime.CompilerServices;
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
    private static readonly ConditionalWeakTable<DbContext, List<OutboxMessage>> Added = [];
    private static readonly ConditionalWeakTable<DbContext, Fanned> Saving = [];

    // By context, with EF's id of the transaction the saves waiting for its commit were made in: providers reuse
    // their transaction objects (Npgsql does), so a transaction disposed without commit must not leave its saves
    // to be started by the next commit on the same connection.
    private static readonly ConditionalWeakTable<DbContext, PendingSaves> PendingCommit = [];

    private sealed record PendingSaves(Guid TransactionId, List<Fanned> Saves);

    private DeliveryEngine? _engine;

    // Resolved on first use: the engine's own dependencies (data protection among them) may need a context to build.
    private DeliveryEngine Engine => _engine ??= services.GetRequiredService<DeliveryEngine>();

    /// <summary>
    /// What one save fanned out, or only that it wrote messages for the loop to fan out; <paramref name="Untracked"/>
    /// when the rows are left for <see cref="SavedChangesAsync"/> to write.
    /// </summary>
    private sealed record Fanned(FanOutResult? FanOut, bool Untracked = false);

    /// <summary>
    /// Called by <see cref="Outbox"/> as it adds a message, so a save need not search the change tracker for one
    /// (which would detect changes a second time on every save).
    /// </summary>
    public static void MessageAdded(DbContext context, OutboxMessage message) => Added.GetOrCreateValue(context).Add(message);

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        // A synchronous save does not query on the caller's thread: its messages are left to the loop.
        if (eventData.Context is { } context && TakeAdded(context) is { Count: > 0 })
        {
            Saving.AddOrUpdate(context, new Fanned(null));
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
            Saving.AddOrUpdate(db, new Fanned(fanOut, untracked));
        }
        return result;
    }

    /// <summary>The messages added since the last save that this save writes and nobody dispatched by hand.</summary>
    private static List<OutboxMessage>? TakeAdded(DbContext context)
    {
        if (!Added.TryGetValue(context, out var added))
        {
            return null;
        }
        Added.Remove(context);
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
        if (eventData.Context is ReferloopDb db && Saving.TryGetValue(db, out var fanned) && fanned is { Untracked: true, FanOut: { } fanOut })
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
        if (context is null || !Saving.TryGetValue(context, out var fanned))
        {
            return;
        }
        Saving.Remove(context);
        if (context.Database.CurrentTransaction is not { } transaction)
        {
            Start(fanned);
            return;
        }
        if (!PendingCommit.TryGetValue(context, out var pending) || pending.TransactionId != transaction.TransactionId)
        {
            // Whatever an earlier transaction of this context left was never committed.
            pending = new PendingSaves(transaction.TransactionId, []);
            PendingCommit.AddOrUpdate(context, pending);
        }
        pending.Saves.Add(fanned);
    }

    /// <summary>
    /// A failed save is undone as far as the fan-out goes, so that a retry of the same save fans out afresh: its
    /// deliveries leave the context and its messages are undispatched again.
    /// </summary>
    private static void Unsaved(DbContext? context)
    {
        if (context is null || !Saving.TryGetValue(context, out var fanned))
        {
            return;
        }
        Saving.Remove(context);
        if (fanned.FanOut is not { } fanOut)
        {
            return;
        }
        if (!fanned.Untracked)
        {
            foreach (var delivery in fanOut.Deliveries)
            {
                context.Entry(delivery).State = EntityState.Detached;
            }
        }
        foreach (var message in fanOut.Messages)
        {
            message.DispatchedAt = null;
            if (fanned.Untracked)
            {
                context.Entry(message).State = EntityState.Added;
            }
            MessageAdded(context, message);
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
        if (context is null || !PendingCommit.TryGetValue(context, out var pending))
        {
            return;
        }
        PendingCommit.Remove(context);
        if (pending.TransactionId == transactionId)
        {
            pending.Saves.ForEach(Start);
        }
    }

    private static void RolledBack(TransactionEndEventData eventData)
    {
        if (eventData.Context is { } context && PendingCommit.TryGetValue(context, out var pending)
            && pending.TransactionId == eventData.TransactionId)
        {
            PendingCommit.Remove(context);
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
