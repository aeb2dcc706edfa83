using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Referloop.Bench;

/// <summary>A server process on a loopback port, with its memory sampled while it runs.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly ChildProcess _process;
    private readonly CancellationTokenSource _stopSampling = new();
    private readonly Task _sampler;
    private readonly List<(long At, double Rss)> _samples = [];
    private double _peak;

    public string BaseUrl { get; }
    public ChildProcess Process => _process;

    private ServerProcess(ChildProcess process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
        _sampler = Task.Run(SampleAsync);
    }

    public static async Task<ServerProcess> StartAsync(string name, string dll, string workDir, int port,
        IReadOnlyDictionary<string, string?> environment, string readyPath, CancellationToken ct)
    {
        Directory.CreateDirectory(workDir);
        var baseUrl = $"http://127.0.0.1:{port}";
        var env = new Dictionary<string, string?>(environment)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["DOTNET_NOLOGO"] = "1",
        };
        var process = ChildProcess.Start(name, "dotnet", [dll, "--urls", baseUrl], workDir, env, Path.Combine(workDir, $"{name}.log"));
        var server = new ServerProcess(process, baseUrl);
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.GetTimestamp() + 180 * Stopwatch.Frequency;
        while (true)
        {
            if (process.HasExited)
            {
                // The log is read before disposing closes it.
                var tail = process.Tail();
                await server.DisposeAsync();
                throw new BenchException($"{name} exited during start:\n{tail}");
            }
            try
            {
                using var response = await probe.GetAsync(baseUrl + readyPath, ct);
                if (response.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
            }
            if (Stopwatch.GetTimestamp() > deadline)
            {
                var tail = process.Tail();
                await server.DisposeAsync();
                throw new BenchException($"{name} was not ready within 180 s:\n{tail}");
            }
            await Task.Delay(200, ct);
        }
    }

    private async Task SampleAsync()
    {
        while (!_stopSampling.IsCancellationRequested)
        {
            if (ProcStats.Memory(_process.Pid) is { } memory)
            {
                lock (_samples)
                {
                    _samples.Add((Stopwatch.GetTimestamp(), memory.Rss));
                    _peak = Math.Max(_peak, memory.Peak);
                }
            }
            try
            {
                await Task.Delay(250, _stopSampling.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public double CpuSeconds() => ProcStats.CpuSeconds(_process.Pid);

    /// <summary>The peak resident set so far (VmHWM), in MiB.</summary>
    public double PeakRss
    {
        get
        {
            lock (_samples)
            {
                return Math.Max(_peak, ProcStats.Memory(_process.Pid)?.Peak ?? 0);
            }
        }
    }

    /// <summary>The mean resident set over a window (Stopwatch timestamps), in MiB.</summary>
    public double MeanRss(long from, long to)
    {
        lock (_samples)
        {
            var window = _samples.Where(s => s.At >= from && s.At <= to).Select(s => s.Rss).ToList();
            return window.Count > 0 ? window.Average() : double.NaN;
        }
    }

    public async ValueTask DisposeAsync()
    {
        var peak = PeakRss;
        _peak = peak;
        await _stopSampling.CancelAsync();
        await _sampler;
        await _process.DisposeAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>The bare receiver's counters (bench/BareServer).</summary>
internal sealed class BareReceiver(HttpClient http, string baseUrl)
{
    public string ReceiveUrl => baseUrl + "/receive";
    public string EventsUrl => baseUrl + "/api/v1/events";

    /// <param name="messages">A <c>webhook-id</c> prefix: count only those messages (and how many came again); else every post.</param>
    public async Task ResetAsync(bool track, CancellationToken ct, string? messages = null) =>
        (await http.PostAsync($"{baseUrl}/reset?track={(track ? "true" : "false")}&messages={Uri.EscapeDataString(messages ?? "")}",
            null, ct)).EnsureSuccessStatusCode();

    public async Task<(long Count, long First, long Last, long Repeats, long Others)> StatsAsync(CancellationToken ct)
    {
        var stats = await http.GetFromJsonAsync<JsonObject>(baseUrl + "/stats", ct) ?? throw new BenchException("no stats from the receiver");
        return ((long)stats["count"]!, (long)stats["first"]!, (long)stats["last"]!, (long)stats["repeats"]!, (long)stats["others"]!);
    }

    public async Task<Dictionary<string, long>> ArrivalsAsync(CancellationToken ct) =>
        await http.GetFromJsonAsync<Dictionary<string, long>>(baseUrl + "/arrivals", ct) ?? [];
}

/// <summary>The few Referloop API calls the bench makes to set up its loads.</summary>
internal sealed class ReferloopApi(HttpClient http, string baseUrl, string adminKey)
{
    public string BaseUrl => baseUrl;
    public string AdminKey => adminKey;

    public HttpRequestMessage Request(HttpMethod method, string path, string? json = null)
    {
        var request = new HttpRequestMessage(method, baseUrl + path);
        request.Headers.Authorization = new("Bearer", adminKey);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        return request;
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct)
    {
        using var request = Request(method, path, body?.ToJsonString());
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        JsonNode? json = null;
        try
        {
            json = text.Length > 0 ? JsonNode.Parse(text) : null;
        }
        catch (System.Text.Json.JsonException)
        {
        }
        return (response.StatusCode, json);
    }

    public async Task<JsonNode> RequireAsync(HttpMethod method, string path, JsonNode? body, CancellationToken ct, params HttpStatusCode[] expected)
    {
        var (status, json) = await SendAsync(method, path, body, ct);
        if (!expected.Contains(status))
        {
            throw new BenchException($"{method} {path} answered {(int)status}: {json?.ToJsonString() ?? "(no body)"}");
        }
        return json ?? new JsonObject();
    }

    /// <summary>Follows a share link once, as a friend would, and returns the click id it records.</summary>
    public async Task<string> ClickAsync(string code, CancellationToken ct)
    {
        using var response = await http.GetAsync($"{baseUrl}/r/{code}", ct);
        var location = response.Headers.Location?.ToString();
        var marker = location?.IndexOf("rl_click=", StringComparison.Ordinal) ?? -1;
        if (response.StatusCode != HttpStatusCode.Redirect || marker < 0)
        {
            throw new BenchException($"GET /r/{code} answered {(int)response.StatusCode} without a click id (Location: {location})");
        }
        var value = location![(marker + "rl_click=".Length)..];
        var end = value.IndexOf('&');
        return Uri.UnescapeDataString(end < 0 ? value : value[..end]);
    }
}
