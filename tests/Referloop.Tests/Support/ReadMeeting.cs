using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Referloop.Tests.Support;

/// <summary>
/// Holds each read of a table that names a value (an e-mail address, a participant's id) until a number of them have
/// run, so that requests at once all read before any of them writes, as they may in production. Bounded: a read that
/// cannot meet the others (they wait for its transaction) goes on alone after a while.
/// </summary>
public sealed class ReadMeeting : DbCommandInterceptor
{
    private sealed record Gathering(string From, object Value, int Count, TimeSpan Bound)
    {
        public int Arrived;
        public TaskCompletionSource All { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private volatile Gathering? _current;

    public void Arm(string table, object value, int count, TimeSpan bound) =>
        _current = new Gathering($"FROM \"{table}\"", value, count, bound);

    public void Disarm() => _current = null;

    public override async ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData,
        DbDataReader result, CancellationToken cancellationToken = default)
    {
        if (_current is { } gathering && command.CommandText.StartsWith("SELECT", StringComparison.Ordinal)
            && command.CommandText.Contains(gathering.From, StringComparison.Ordinal)
            && command.Parameters.Cast<DbParameter>().Any(p => Equals(p.Value, gathering.Value)))
        {
            if (Interlocked.Increment(ref gathering.Arrived) >= gathering.Count)
            {
                gathering.All.TrySetResult();
            }
            await Task.WhenAny(gathering.All.Task, Task.Delay(gathering.Bound, cancellationToken));
        }
        return result;
    }
}
