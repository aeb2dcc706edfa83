using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Referloop.Storage;

/// <summary>
/// <see cref="BulkRows"/> statements of one transaction sent together: on PostgreSQL in one round trip (a
/// <see cref="System.Data.Common.DbBatch"/>), on SQLite one after the other (an embedded database has no round trips
/// to save). A batch of events writes all its new rows this way; a round trip costs more than most of its statements.
/// Runs on the context's open connection, inside its current transaction; the first statement that fails fails the
/// batch, and the transaction with it.
/// </summary>
internal sealed class StatementBatch(ReferloopDb db)
{
    private readonly List<Statement> _statements = [];

    private sealed record Statement(BulkRows Rows, string Sqlite, string Postgres, Action<int>? Changed);

    /// <summary>
    /// Inserts <paramref name="rows"/> into <paramref name="table"/> (see <see cref="BulkRows.InsertAsync"/>; where
    /// <paramref name="where"/> holds, see <see cref="BulkRows.Insert"/>); <paramref name="changed"/> is told how many
    /// rows the statement inserted or updated.
    /// </summary>
    public StatementBatch Insert(BulkRows rows, string table, string? suffix = null, Action<int>? changed = null,
        Func<Func<string, string>, string>? where = null)
    {
        var (sqlite, postgres) = rows.Insert(table, suffix, where);
        _statements.Add(new Statement(rows, sqlite, postgres, changed));
        return this;
    }

    /// <summary>Runs the statements in the order they were added; a statement without rows is left out.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var statements = _statements.Where(s => s.Rows.Count > 0).ToList();
        if (db.OnSqlite)
        {
            foreach (var statement in statements)
            {
                // Run apart from the callback: Changed?.Invoke(RunOnSqlite(…)) would not run the statement without one.
                var changed = statement.Rows.RunOnSqlite(statement.Sqlite);
                statement.Changed?.Invoke(changed);
            }
            return;
        }
        if (statements.Count == 0)
        {
            return;
        }
        await using var batch = db.Database.GetDbConnection().CreateBatch();
        batch.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        foreach (var statement in statements)
        {
            var command = batch.CreateBatchCommand();
            command.CommandText = statement.Postgres;
            statement.Rows.BindArrays(command.Parameters, command.CreateParameter);
            batch.BatchCommands.Add(command);
        }
        await batch.ExecuteNonQueryAsync(ct);
        for (var i = 0; i < statements.Count; i++)
        {
            statements[i].Changed?.Invoke(batch.BatchCommands[i].RecordsAffected);
        }
    }
}
