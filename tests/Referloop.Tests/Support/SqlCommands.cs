using System.Data.Common;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Referloop.Tests.Support;

/// <summary>An SQL command EF Core executed: its text and its parameters' values.</summary>
public sealed record SqlCommand(string Text, IReadOnlyList<(string Name, object? Value)> Parameters);

/// <summary>The result of some work and the SQL commands EF Core executed for it.</summary>
public sealed record Recorded<T>(T Result, IReadOnlyList<SqlCommand> Commands)
{
    public IReadOnlyList<string> Texts => [.. Commands.Select(c => c.Text)];
}

/// <summary>
/// Records every SQL command EF Core executes within the current asynchronous flow. The diagnostic listener is
/// process-wide; the flow tells the commands of one test's work apart from the background services' and from other
/// test classes'. <see cref="Listen"/> before the server starts: EF caches for a while that nobody listens.
/// </summary>
public sealed class SqlCommands : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
{
    private static readonly AsyncLocal<List<SqlCommand>?> Current = new();
    private static readonly Lazy<IDisposable> Subscription =
        new(() => DiagnosticListener.AllListeners.Subscribe(new SqlCommands()));

    public static void Listen() => _ = Subscription.Value;

    public static async Task<Recorded<T>> RecordAsync<T>(Func<Task<T>> work)
    {
        var commands = new List<SqlCommand>();
        Current.Value = commands;
        try
        {
            var result = await work();
            lock (commands)
            {
                return new Recorded<T>(result, [.. commands]);
            }
        }
        finally
        {
            Current.Value = null;
        }
    }

    public void OnNext(DiagnosticListener listener)
    {
        if (listener.Name == DbLoggerCategory.Name)
        {
            listener.Subscribe(this, name => name == RelationalEventId.CommandExecuted.Name);
        }
    }

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Value is CommandExecutedEventData executed && Current.Value is { } commands)
        {
            var parameters = executed.Command.Parameters.Cast<DbParameter>().Select(p => (p.ParameterName, (object?)p.Value)).ToList();
            lock (commands)
            {
                commands.Add(new SqlCommand(executed.Command.CommandText, parameters));
            }
        }
    }

    public void OnCompleted()
    {
    }

    public void OnError(Exception error)
    {
    }
}
