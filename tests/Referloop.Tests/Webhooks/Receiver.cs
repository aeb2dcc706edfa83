using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Referloop.Tests.Webhooks;

/// <summary>What a receiver answers to its n-th request (1-based).</summary>
public sealed record Reply(int Status = 200, string Body = "ok", TimeSpan Delay = default, IDictionary<string, string>? Headers = null);

public sealed record ReceivedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers,
    string Body, string? ContentType, int RemotePort = 0)
{
    public string Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var value) ? value : "";

    /// <summary>What the signature covers: the body, or for a GET the query string as received, without its '?'.</summary>
    public string SignedContent => Method == "GET" ? (Query.Length > 0 ? Query[1..] : "") : Body;
}

/// <summary>A real HTTP receiver on 127.0.0.1 (Kestrel on a free port) that records every request.</summary>
public sealed class Receiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private int _count;

    private Receiver(WebApplication app) => _app = app;

    /// <summary>Decides the answer; by default 200 "ok".</summary>
    public Func<int, ReceivedRequest, Reply> Respond { get; set; } = (_, _) => new Reply();

    /// <summary>
    /// Called with the request number when the receiver is done waiting on a request (about to answer, or the
    /// sender went away): the end of the window in which the sender still had it in flight.
    /// </summary>
    public Action<int>? Settled { get; set; }

    public IReadOnlyList<ReceivedRequest> Requests => _requests.ToArray();

    public int Port { get; private set; }

    public string Url(string path = "/hook") => $"http://127.0.0.1:{Port}{path}";

    public static async Task<Receiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new Receiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        receiver.Port = new Uri(app.Urls.First()).Port;
        return receiver;
    }

    private async Task HandleAsync(HttpContext http)
    {
        using var reader = new StreamReader(http.Request.Body);
        var body = await reader.ReadToEndAsync();
        var request = new ReceivedRequest(http.Request.Method, http.Request.Path, http.Request.QueryString.Value ?? "",
            http.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()), body, http.Request.ContentType,
            http.Connection.RemotePort);
        var n = Interlocked.Increment(ref _count);
        var reply = Respond(n, request);
        try
        {
            if (reply.Delay > TimeSpan.Zero)
            {
                await Task.Delay(reply.Delay, http.RequestAborted);
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }
        finally
        {
            Settled?.Invoke(n);
        }
        _requests.Enqueue(request);
        _arrived.Release();
        http.Response.StatusCode = reply.Status;
        foreach (var (name, value) in reply.Headers ?? new Dictionary<string, string>())
        {
            http.Response.Headers[name] = value;
        }
        await http.Response.WriteAsync(reply.Body);
    }

    /// <summary>Waits (real time) until at least <paramref name="count"/> requests were answered.</summary>
    public async Task<ReceivedRequest> WaitForAsync(int count, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (_requests.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                Assert.Fail($"expected {count} requests at {Url()}, got {_requests.Count} within {seconds} s");
            }
        }
        return _requests.ToArray()[count - 1];
    }

    /// <summary>Asserts that no request beyond <paramref name="count"/> arrives within a short real-time wait.</summary>
    public async Task AssertStillAsync(int count, int milliseconds = 400)
    {
        await Task.Delay(milliseconds);
        var requests = _requests.ToArray();
        Assert.True(count == requests.Length, $"expected {count} requests at {Url()}, got {requests.Length}:\n" +
            string.Join("\n", requests.Select(r => $"{r.Header("webhook-id")} {r.Header("webhook-timestamp")} {r.Body[..Math.Min(r.Body.Length, 120)]}")));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
