using Microsoft.EntityFrameworkCore;
using Referloop.Webhooks;

namespace Referloop.Storage;

/// <summary>
/// Runs a unit of work in one transaction: on SQLite as a unit of the group commit (<see cref="SqliteGroupCommit"/>),
/// sharing one commit with the units queued meanwhile; elsewhere in a transaction of its own. Either way, what its
/// saves fanned out to webhook endpoints starts once it is committed.
/// </summary>
public sealed class UnitOfWork(OutboxSaveInterceptor outbox, SqliteGroupCommit? groupCommit = null)
{
    public async Task<T> RunAsync<T>(ReferloopDb db, Func<Task<T>> work, CancellationToken ct)
    {
        if (groupCommit is not null)
        {
            var (shared, transactionId) = await groupCommit.RunAsync(db, work, ct);
            // EF Core reports only the commits of transactions a context begins itself.
            outbox.Committed(db, transactionId);
            return shared;
        }
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var result = await work();
        await transaction.CommitAsync(ct);
        return result;
    }
}
