using Referloop.Webhooks;

namespace Referloop.Storage;

/// <summary>
/// Runs a unit of work in one transaction: on SQLite as a unit of the group commit (<see cref="SqliteGroupCommit"/>),
/// sharing one commit with the units queued meanwhile; elsewhere in a transaction of its own. Once it is committed the
/// delivery engine is woken for the outbox messages it wrote.
/// </summary>
public sealed class UnitOfWork(OutboxSignal outbox, SqliteGroupCommit? groupCommit = null)
{
    public async Task<T> RunAsync<T>(ReferloopDb db, Func<Task<T>> work, CancellationToken ct)
    {
        T result;
        if (groupCommit is not null)
        {
            (result, _) = await groupCommit.RunAsync(db, work, ct);
        }
        else
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            result = await work();
            await transaction.CommitAsync(ct);
        }
        outbox.Poke();
        return result;
    }
}
