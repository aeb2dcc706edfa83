using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Referloop.Storage;

/// <summary>
/// Whether a write failed on a unique index: another request or instance wrote the same key first. Seen through
/// EF Core's <c>DbUpdateException</c> as well as from a command run directly.
/// </summary>
public static class UniqueViolation
{
    public static bool Is(Exception exception) => exception switch
    {
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.UniqueViolation,
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
        SqliteException sqlite => sqlite.SqliteExtendedErrorCode is 2067 or 1555,
        DbException => false,
        _ => exception.InnerException is { } inner && Is(inner),
    };
}
