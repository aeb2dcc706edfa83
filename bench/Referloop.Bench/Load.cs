using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Referloop.Bench;

internal sealed record WrkResult(long Requests, double Seconds, double RequestsPerSecond, double P50Ms, double P99Ms, long Errors)
{
    public double ErrorRate => Requests == 0 ? 1 : Errors / (double)Requests;
}

internal sealed record LatencyResult(long Sent, long Ok, long Failed, double P50Ms, double P99Ms, double AchievedRate);

/// <summary>The same attributed purchase as bench/wrk/events.lua writes, for the driver's own HttpClient loads.</summary>
internal static class EventBodies
{
    public static string Purchase(string campaignId, string id, long n, (string Code, string ClickId) reference)
    {
        var attribution = n % 2 == 0
            ? $"\"referralCode\":\"{reference.Code}\",\"clickId\":null"
            : $"\"referralCode\":null,\"clickId\":\"{reference.ClickId}\"";
        // Integers only, so the culture cannot change the text.
        return $"{{\"campaignId\":\"{campaignId}\",\"type\":\"purchase\",\"email\":\"f-{id}@example.net\",\"name\":\"Bench Friend {n}\",{attribution}," +
            $"\"orderId\":\"o-{id}\",\"purchaseValue\":120.5,\"currency\":\"USD\",\"ip\":\"198.51.100.{n % 250}\"," +
            "\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\"," +
            "\"properties\":{\"plan\":\"pro\",\"channel\":\"newsletter\",\"sku\":\"SKU-00042\",\"landing\":\"spring-sale\"}}";
    }
}

internal static class Wrk
{
    /// <summary>Runs wrk with bench/wrk/events.lua (or <paramref name="script"/>) against <paramref name="url"/> and reads its summary line.</summary>
    public static async Task<WrkResult> RunAsync(Settings settings, string workDir, string url, TimeSpan duration,
        IReadOnlyList<string> scriptArguments, string name, CancellationToken ct, string? script = null)
    {
        string[] arguments =
        [
            $"-t{settings.Threads}", $"-c{settings.Connections}", $"-d{Math.Max(1, (int)duration.TotalSeconds)}s",
            "--latency", "--timeout", "10s", "-s", script ?? settings.EventsScript, url, "--", .. scriptArguments,
        ];
        var log = Path.Combine(workDir, $"wrk-{name}.log");
        await using var wrk = ChildProcess.Start($"wrk ({name})", "wrk", arguments, workDir, new Dictionary<string, string?>(), log);
        var exit = await wrk.WaitAsync(duration + TimeSpan.FromSeconds(30), ct);
        var output = wrk.Output();
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("WRK_JSON ", StringComparison.Ordinal));
        if (exit != 0 || line is null)
        {
            throw new BenchException($"wrk ({name}) failed (exit {exit}):\n{wrk.Tail(15)}");
        }
        using var json = JsonDocument.Parse(line["WRK_JSON ".Length..]);
        var root = json.RootElement;
        long Field(string field) => root.GetProperty(field).GetInt64();
        var requests = Field("requests");
        var seconds = Field("durationUs") / 1e6;
        var errors = Field("connectErrors") + Field("readErrors") + Field("writeErrors") + Field("statusErrors") + Field("timeouts");
        return new WrkResult(requests, seconds, (requests - errors) / seconds, Field("p50Us") / 1000.0, Field("p99Us") / 1000.0, errors);
    }
}

internal static class Load
{
    public static HttpClient NewClient(int connections) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = connections,
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    })
    { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Open-loop load: request i is due at start + i/rate whatever happened to the earlier ones, and its latency is
    /// counted from when it was due, so a stalled server shows up in the percentiles instead of slowing the load.
    /// </summary>
    public static async Task<LatencyResult> OpenLoopAsync(HttpClient client, double rate, TimeSpan duration,
        Func<long, HttpRequestMessage> request, Action<long, long>? sent, CancellationToken ct, int maxInFlight = 4096)
    {
        var total = Math.Max(1, (long)(rate * duration.TotalSeconds));
        var latencies = new ConcurrentBag<double>();
        long ok = 0, failed = 0;
        using var inFlight = new SemaphoreSlim(maxInFlight);
        var tasks = new List<Task>((int)Math.Min(total, 1_000_000));
        var start = Stopwatch.GetTimestamp();
        for (long i = 0; i < total; i++)
        {
            var due = start + (long)(i * Stopwatch.Frequency / rate);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.FromMilliseconds(2))
            {
                await Task.Delay(wait, ct);
            }
            if (!inFlight.Wait(0))
            {
                // The server is so far behind that this load would only measure the backlog.
                Interlocked.Increment(ref failed);
                continue;
            }
            var n = i;
            sent?.Invoke(n, due);
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    using var message = request(n);
                    using var response = await client.SendAsync(message, HttpCompletionOption.ResponseContentRead, ct);
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref ok);
                        latencies.Add(Stopwatch.GetElapsedTime(due).TotalMilliseconds);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failed);
                }
                finally
                {
                    inFlight.Release();
                }
            }, CancellationToken.None));
        }
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        await Task.WhenAll(tasks);
        var sorted = latencies.Order().ToArray();
        return new LatencyResult(total, ok, failed, Percentile(sorted, 50), Percentile(sorted, 99), total / Math.Max(elapsed, 1e-9));
    }

    /// <summary>
    /// The bare HttpClient ceiling: <paramref name="concurrency"/> loops POST the same body to the bare receiver for
    /// the duration. Returns posts/s and the p50/p99 of one POST.
    /// </summary>
    /// <summary>
    /// POSTs the body from <paramref name="concurrency"/> loops; <c>CpuPer1000</c> is this process's CPU per 1,000
    /// measured posts (the loops are all it does meanwhile), to set beside the server's CPU per delivered message.
    /// </summary>
    public static async Task<(double PostsPerSecond, double P50Ms, double P99Ms, long Errors, double CpuPer1000)> HttpClientCeilingAsync(string url,
        string body, int concurrency, TimeSpan warmup, TimeSpan duration, CancellationToken ct)
    {
        using var client = NewClient(concurrency);
        var bytes = Encoding.UTF8.GetBytes(body);
        var latencies = new ConcurrentBag<double>();
        long posts = 0, errors = 0;
        var measuring = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var begin = Stopwatch.GetTimestamp();
                try
                {
                    using var content = new ByteArrayContent(bytes);
                    content.Headers.ContentType = new("application/json");
                    using var response = await client.PostAsync(url, content, stop.Token);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref errors);
                    }
                    else if (Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref posts);
                        latencies.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }, CancellationToken.None)).ToList();
        await Task.Delay(warmup, ct);
        Volatile.Write(ref measuring, true);
        var start = Stopwatch.GetTimestamp();
        var cpu = ProcStats.CpuSeconds(Environment.ProcessId);
        await Task.Delay(duration, ct);
        Volatile.Write(ref measuring, false);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var cpuSeconds = ProcStats.CpuSeconds(Environment.ProcessId) - cpu;
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        var sorted = latencies.Order().ToArray();
        var measured = Interlocked.Read(ref posts);
        return (measured / seconds, Percentile(sorted, 50), Percentile(sorted, 99), errors,
            measured > 0 ? cpuSeconds / measured * 1000 : double.NaN);
    }

    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}
