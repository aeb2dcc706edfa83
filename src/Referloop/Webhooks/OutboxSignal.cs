using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

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
/// Pokes <see cref="OutboxSignal"/> once a change that added outbox messages is committed, wherever in the code it
/// was written, so the first delivery attempt goes out milliseconds after the write. Inside an explicit
/// transaction the poke waits for the commit: before it the messages are not visible to the engine.
/// </summary>
internal sealed class OutboxSaveInterceptor(OutboxSignal signal) : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    private static readonly ConditionalWeakTable<DbContext, object> Added = [];
    private static readonly ConditionalWeakTable<DbContext, object> PendingCommit = [];
    private static readonly ConditionalWeakTable<DbContext, object> Saving = [];

    /// <summary>
    /// Called by <see cref="Outbox"/> as it adds a message, so a save need not search the change tracker for one
    /// (which would detect changes a second time on every save).
    /// </summary>
    public static void MessageAdded(DbContext context) => Added.AddOrUpdate(context, true);

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        Remember(eventData.Context);
        return result;
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        Remember(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        Saved(eventData.Context);
        return result;
    }

    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Saved(eventData.Context);
        return ValueTask.FromResult(result);
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Committed(eventData.Context);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Committed(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => Forget(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Forget(eventData.Context);
        return Task.CompletedTask;
    }

    private static void Remember(DbContext? context)
    {
        if (context is not null && Added.Remove(context))
        {
            Saving.AddOrUpdate(context, true);
        }
    }

    private void Saved(DbContext? context)
    {
        if (context is null || !Saving.Remove(context))
        {
            return;
        }
        if (context.Database.CurrentTransaction is null)
        {
            signal.Poke();
        }
        else
        {
            PendingCommit.AddOrUpdate(context, true);
        }
    }

    private void Committed(DbContext? context)
    {
        if (context is not null && PendingCommit.Remove(context))
        {
            signal.Poke();
        }
    }

    private static void Forget(DbContext? context)
    {
        if (context is not null)
        {
            PendingCommit.Remove(context);
        }
    }
}
