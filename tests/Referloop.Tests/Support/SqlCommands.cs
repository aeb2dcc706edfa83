using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Hosting;

namespace Referloop.Tests.Support;

/// <summary>An SQL command EF Core executed: its text and its parameters' values.</summary>
public sealed record SqlCommand(string Text, IReadOnlyList<(string Name, object? Value)> Parameters);

/// <summary>
/// The result of some work, the SQL commands EF Core executed for it and, on PostgreSQL, the commands and batches
/// Npgsql sent for it (EF Core's and plain ADO.NET ones alike: one round trip each).
/// </summary>
public sealed record Recorded<T>(T Result, IReadOnlyList<SqlCommand> Commands, IReadOnlyList<string> RoundTrips)
{
    public IReadOnlyList<string> Texts => [.. Commands.Select(c => c.Text)];
}

/// <summary>
/// Records every SQL command EF Core executes for some work: within its asynchronous flow, and in the event loop's
/// batches that answer its requests. The diagnostic listener is process-wide; the flow, and the links of a batch's span
/// (<see cref="Telemetry.EventBatch"/>) to the requests it answers, tell one test's commands apart from the background
/// services' and from other test classes'. <see cref="Listen"/> before the server starts: EF caches for a while that
/// nobody listens.
/// </summary>
public sealed class SqlCommands : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
{
    private static readonly AsyncLocal<Window?> Current = new();
    private static readonly ActivitySource Work = new("Referloop.Tests");
    private static readonly ConcurrentDictionary<ActivityTraceId, Window> ByTrace = new();
    private static readonly Lazy<IDisposable> Subscription = new(() =>
    {
        // Spans of the work, of the batches and of Npgsql's commands are made only while someone listens.
        ActivitySource.AddActivityListener(new ActivityListener
        {
            ShouldListenTo = source => source.Name is Telemetry.Name or "Referloop.Tests" or "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = span =>
            {
                // A physical connection the pool opens (Npgsql's "CONNECT" span) is the pool's state, not the work's cost.
                if (span.Source.Name == "Npgsql" && !span.DisplayName.StartsWith("CONNECT", StringComparison.Ordinal)
                    && (WindowOf(span.Parent) ?? WindowOfWork(span)) is { } window)
                {
                    lock (window)
                    {
                        window.RoundTrips.Add((span.GetTagItem("db.query.text") ?? span.GetTagItem("db.statement") ?? span.DisplayName)?.ToString() ?? "");
                    }
                }
            },
        });
        return DiagnosticListener.AllListeners.Subscribe(new SqlCommands());
    });

    public static void Listen() => _ = Subscription.Value;

    private sealed class Window
    {
        public List<SqlCommand> Commands { get; } = [];
        public List<string> RoundTrips { get; } = [];
    }

    public static async Task<Recorded<T>> RecordAsync<T>(Func<Task<T>> work)
    {
        var window = new Window();
        using var span = Work.StartActivity("recorded work", ActivityKind.Internal, parentContext: default)
            ?? throw new InvalidOperationException("SqlCommands.Listen() first");
        Current.Value = window;
        ByTrace[span.TraceId] = window;
        try
        {
            var result = await work();
            lock (window)
            {
                return new Recorded<T>(result, [.. window.Commands], [.. window.RoundTrips]);
            }
        }
        finally
        {
            Current.Value = null;
            ByTrace.TryRemove(span.TraceId, out _);
        }
    }

    /// <summary>
    /// The recorded work a span belongs to: the work's own flow, or a batch of the event loop that answers its
    /// requests (the loop runs outside their flow; its batch's span links to them).
    /// </summary>
    private static Window? WindowOf(Activity? current)
    {
        for (var span = current; span is not null; span = span.Parent)
        {
            if (span.OperationName == Telemetry.EventBatch)
            {
                foreach (var link in span.Links)
                {
                    if (ByTrace.TryGetValue(link.Context.TraceId, out var window))
                    {
                        return window;
                    }
                }
            }
        }
        return null;
    }

    private static Window? WindowOfWork(Activity span) => ByTrace.GetValueOrDefault(span.TraceId);

    public void OnNext(DiagnosticListener listener)
    {
        if (listener.Name == DbLoggerCategory.Name)
        {
            listener.Subscribe(this, name => name == RelationalEventId.CommandExecuted.Name);
        }
    }

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Value is CommandExecutedEventData executed && (Current.Value ?? WindowOf(Activity.Current)) is { } window)
        {
            var parameters = executed.Command.Parameters.Cast<DbParameter>().Select(p => (p.ParameterName, (object?)p.Value)).ToList();
            lock (window)
            {
                window.Commands.Add(new SqlCommand(executed.Command.CommandText, parameters));
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
