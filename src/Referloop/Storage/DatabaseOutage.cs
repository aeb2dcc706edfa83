using System.Data.Common;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;

namespace Referloop.Storage;

/// <summary>
/// Whether a failure is the database's rather than one row's: it cannot be reached, it timed out, its file cannot be
/// written. A batch that fails so is not run again item by item, which would fail each item in turn, each after its
/// own timeout, while the requests behind them wait.
/// </summary>
public static class DatabaseOutage
{
    public static bool Is(Exception exception) => exception switch
    {
        TimeoutException or SocketException => true,
        // readonly, I/O error, corrupt, full, cannot open
        SqliteException { SqliteErrorCode: 8 or 10 or 11 or 13 or 14 } => true,
        SqliteException => false,
        // Npgsql marks these transient too, but they are races that running the items alone settles: serialization
        // failure, deadlock, a lock not available.
        DbException { SqlState: "40001" or "40P01" or "55P03" } => false,
        // Npgsql marks connection failures and timeouts transient.
        DbException { IsTransient: true } => true,
        _ => exception.InnerException is { } inner && Is(inner),
    };
}
