using Microsoft.Data.Sqlite;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

/// <summary>
/// A statement outside a transaction waits for SQLite's one writer when SQLite's compiler says it writes: whatever
/// its text starts with, and whichever of its statements writes.
/// </summary>
public sealed class SqliteWriteQueueTests : IDisposable
{
    private readonly SqliteConnection _connection = new("Data Source=:memory:");

    public SqliteWriteQueueTests()
    {
        _connection.Open();
        using var create = _connection.CreateCommand();
        create.CommandText = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)";
        create.ExecuteNonQuery();
    }

    [Theory]
    [InlineData("SELECT id, name FROM items WHERE id = @id", false)]
    [InlineData("SELECT COUNT(*) FROM items;", false)]
    [InlineData("  INSERT INTO items (name) VALUES ('a')", true)]
    [InlineData("UPDATE items SET name = 'b' RETURNING id", true)]
    [InlineData("DELETE FROM items WHERE id = 1", true)]
    [InlineData("REPLACE INTO items (id, name) VALUES (1, 'c')", true)]
    [InlineData("-- a comment first\nUPDATE items SET name = 'd'", true)]
    [InlineData("WITH named AS (SELECT 'e' AS name) INSERT INTO items (name) SELECT name FROM named", true)]
    [InlineData("SELECT 1; DELETE FROM items", true)]
    public void SQLite_says_which_statements_write(string sql, bool writes) =>
        Assert.Equal(writes, SqliteWriteQueue.Writes(_connection.Handle!, sql));

    [Fact]
    public void A_statement_SQLite_cannot_compile_is_not_judged() =>
        Assert.Null(SqliteWriteQueue.Writes(_connection.Handle!, "SELECT name FROM no_such_table"));

    public void Dispose() => _connection.Dispose();
}
