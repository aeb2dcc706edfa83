using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;

namespace Referloop.Bench;

/// <summary>
/// One run: the raw ceilings of this machine, then for each provider the ingest, delivery, growth and resource
/// figures of Referloop, each beside its ceiling. Load generator, bare servers and Referloop run as separate processes.
/// </summary>
internal sealed partial class Bench(Settings settings, Report report, string tempDir)
{
    // The write path's targets: a tenth of bare Kestrel on SQLite (a quarter is the goal), a twentieth on PostgreSQL,
    // whose server shares the machine; 0.3 ms of the server's CPU per attributed purchase.
    private static readonly Target IngestThroughputSqlite = new("≥ 10% of bare Kestrel", (_, ratio) => ratio >= 0.10);
    private static readonly Target IngestThroughputPostgres = new("≥ 5% of bare Kestrel", (_, ratio) => ratio >= 0.05);
    private static readonly Target IngestCpu = new("≤ 0.30 CPU s", (value, _) => value <= 0.30);
    private static readonly Target AcceptThroughput = new("≥ 25% of bare Kestrel", (_, ratio) => ratio >= 0.25);
    private static readonly Target IngestP99 = new("p99 ≤ 25 ms", (value, _) => value <= 25);
    private static readonly Target DeliveryThroughput = new("≥ 50% of bare HttpClient", (_, ratio) => ratio >= 0.5);
    private static readonly Target FirstAttemptP50 = new("p50 ≤ 5 ms", (value, _) => value <= 5);
    private static readonly Target FirstAttemptP99 = new("p99 ≤ 50 ms", (value, _) => value <= 50);
    private static readonly Target Growth = new("≥ 90% of the figure at 0", (_, ratio) => ratio >= 0.9);
    private static readonly Target Memory = new("≤ 200 MB", (value, _) => value <= 200);

    private static Target IngestThroughput(string provider) => provider == "postgres" ? IngestThroughputPostgres : IngestThroughputSqlite;

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _adminKey = "rl_admin_bench_" + Guid.NewGuid().ToString("N");
    private readonly HttpClient _http = Load.NewClient(64);

    private (double Rps, double P50, double P99, double CpuPer1000, double PeakRss, double SteadyRss)? _kestrel;
    private (double PostsPerSecond, double P50, double P99, double CpuPer1000)? _httpClient;
    private BareReceiver _receiver = null!;

    public void Log(string message) => Console.WriteLine($"[{_clock.Elapsed:mm\\:ss}] {message}");

    public async Task RunAsync(CancellationToken ct)
    {
        Preflight();
        Log($"providers: {string.Join(", ", settings.Providers)}; {settings.Duration.TotalSeconds:0} s per load, {settings.Connections} connections, " +
            $"{settings.DeliveryMessages:N0} queued messages, {settings.GrowthRows:N0} stored rows for growth{(settings.Quick ? " (QUICK)" : "")}");

        var barePort = ServerProcess.FreePort();
        await using var bare = await ServerProcess.StartAsync("bare-server", settings.BareServerDll, Path.Combine(tempDir, "bare"), barePort,
            new Dictionary<string, string?>(), "/stats", ct);
        _receiver = new BareReceiver(_http, bare.BaseUrl);
        if (settings.CompareDll is { } other)
        {
            foreach (var provider in settings.Providers)
            {
                await CompareAsync(provider, other, ct);
            }
            return;
        }
        await MeasureCeilingsAsync(bare, ct);

        foreach (var provider in settings.Providers)
        {
            try
            {
                await RunProviderAsync(provider, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var message = e is BenchException ? e.Message : e.ToString();
                report.Error($"{provider}: {message}");
                Log($"{provider}: FAILED: {message}");
            }
        }
    }

    private void Preflight()
    {
        foreach (var (file, hint) in new[]
        {
            (settings.ServerDll, "build it with: dotnet build -c Release"),
            (settings.BareServerDll, "build it with: dotnet build -c Release"),
            (settings.EventsScript, "it is copied from bench/wrk by the build"),
            (settings.ClicksScript, "it is copied from bench/wrk by the build"),
        })
        {
            if (!File.Exists(file))
            {
                throw new BenchException($"{file} is missing; {hint}");
            }
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        if (!path.Split(':').Any(dir => File.Exists(Path.Combine(dir, "wrk"))))
        {
            throw new BenchException("wrk is not installed (./bench.sh installs it with apt-get install wrk)");
        }
    }

    private async Task MeasureCeilingsAsync(ServerProcess bare, CancellationToken ct)
    {
        var refs = Path.Combine(tempDir, "bare-refs.txt");
        await File.WriteAllLinesAsync(refs, Enumerable.Range(0, 100).Select(i => $"code{i:D4} clk_{i:D32}"), ct);
        string[] script(string prefix) => [prefix, "cmp_00000000000000000000000000000000", "bare", refs];

        Log("ceiling: bare Kestrel under wrk");
        if (settings.Warmup > TimeSpan.Zero)
        {
            await Wrk.RunAsync(settings, tempDir, _receiver.EventsUrl, settings.Warmup, script("w"), "bare-warmup", ct);
        }
        var cpu = bare.CpuSeconds();
        var started = Stopwatch.GetTimestamp();
        var wrk = await Wrk.RunAsync(settings, tempDir, _receiver.EventsUrl, settings.Duration, script("b"), "bare", ct);
        var steady = bare.MeanRss(started, Stopwatch.GetTimestamp());
        var cpuPer1000 = (bare.CpuSeconds() - cpu) / Math.Max(1, wrk.Requests - wrk.Errors) * 1000;
        var barePeak = bare.PeakRss;
        _kestrel = (wrk.RequestsPerSecond, wrk.P50Ms, wrk.P99Ms, cpuPer1000, barePeak, steady);
        report.Measurements["bareKestrel"] = wrk;
        report.Add("machine", "bare Kestrel: 202 to the event body", wrk.RequestsPerSecond, "req/s",
            note: wrk.Errors > 0 ? $"{wrk.Errors} errors" : null);
        report.Add("machine", "bare Kestrel p50 (wrk, saturated)", wrk.P50Ms, "ms");
        report.Add("machine", "bare Kestrel p99 (wrk, saturated)", wrk.P99Ms, "ms");
        Log($"  {wrk.RequestsPerSecond:N0} req/s, p50 {wrk.P50Ms:0.00} ms, p99 {wrk.P99Ms:0.00} ms");

        Log($"ceiling: bare HttpClient POSTs to the bare receiver, {settings.DeliveryConcurrency} at a time");
        await _receiver.ResetAsync(track: false, ct);
        var body = EventBodies.Purchase("cmp_00000000000000000000000000000000", "ceiling-1", 1, ("code0001", "clk_1"));
        var posts = await Load.HttpClientCeilingAsync(_receiver.ReceiveUrl, body, settings.DeliveryConcurrency, settings.Warmup,
            settings.Duration, ct);
        _httpClient = (posts.PostsPerSecond, posts.P50Ms, posts.P99Ms, posts.CpuPer1000);
        report.Measurements["bareHttpClient"] = new { posts.PostsPerSecond, posts.P50Ms, posts.P99Ms, posts.Errors, posts.CpuPer1000 };
        report.Add("machine", "bare HttpClient POST → 200", posts.PostsPerSecond, "posts/s", note: posts.Errors > 0 ? $"{posts.Errors} errors" : null);
        report.Add("machine", "bare HttpClient POST p50 / p99", posts.P50Ms, "ms", note: $"p99 {Report.Format(posts.P99Ms)} ms");
        report.Add("machine", "bare HttpClient CPU per 1,000 posts", posts.CpuPer1000, "CPU s");
        Log($"  {posts.PostsPerSecond:N0} posts/s, p50 {posts.P50Ms:0.00} ms, p99 {posts.P99Ms:0.00} ms");
        report.Add("machine", "bare Kestrel RSS peak / steady", barePeak, "MB", note: $"steady {Report.Format(steady)} MB");
        report.Add("machine", "bare Kestrel CPU per 1,000 requests", cpuPer1000, "CPU s");
    }

    private sealed class Fixture
    {
        public required string CampaignId { get; init; }
        public required string RefsFile { get; init; }
        public required List<(string Code, string ClickId)> Refs { get; init; }
        public string? EndpointId { get; set; }
    }

    private async Task RunProviderAsync(string provider, CancellationToken ct)
    {
        var db = BenchDatabase.Create(provider, settings, tempDir);
        var seeder = new Seeder(db, m => Log($"  {m}"));
        var kestrel = _kestrel!.Value;
        var http = _httpClient!.Value;
        var growthLabel = $"{settings.GrowthRows:N0}";

        Log($"{provider}: ceiling: bare insert of one ~500-byte row per transaction, {settings.Connections} at a time");
        await db.ResetAsync(ct);
        var insert = await db.InsertCeilingAsync(settings.Connections, 1, settings.Warmup, settings.Duration, ct);
        report.Add(provider, "bare insert, 1 row per transaction", insert, "rows/s");
        Log($"  {insert:N0} rows/s");
        // Not a ceiling of any target, but what a batched writer could reach on this disk.
        var batched = await db.InsertCeilingAsync(settings.Connections, 100, TimeSpan.Zero,
            TimeSpan.FromSeconds(Math.Max(2, settings.Duration.TotalSeconds / 2)), ct);
        report.Add(provider, "bare insert, 100 rows per transaction", batched, "rows/s");
        Log($"  {batched:N0} rows/s in 100-row transactions");

        await db.ResetAsync(ct);
        double? ingest0 = null, delivery0 = null, cpuPer1000 = null, halfCpuPer1000 = null, steadyRss = null;
        double peakRss = 0;
        Fixture? program = null;
        var hasEvents = false;
        var hasWebhooks = false;

        var server = await StartServerAsync(db, provider, "referloop-0", ct);
        try
        {
            var api = new ReferloopApi(_http, server.BaseUrl, _adminKey);
            hasEvents = await RouteExistsAsync(api, "/api/v1/events", ct);
            hasWebhooks = await RouteExistsAsync(api, "/api/v1/webhook-endpoints", ct);
            if (!hasEvents)
            {
                report.Note($"{provider}: this build has no POST /api/v1/events: ingest figures are not measured");
            }
            if (!hasWebhooks)
            {
                report.Note($"{provider}: this build has no webhook endpoints: delivery figures are not measured");
            }
            program = await SetupProgramAsync(api, provider, hasEvents, ct);

            if (hasEvents)
            {
                Log($"{provider}: ingest at saturation (wrk, {settings.Connections} connections)");
                var (wrk, cpu) = await SaturateAsync(server, program, "0", ct);
                ingest0 = wrk.RequestsPerSecond;
                cpuPer1000 = cpu;
                report.Measurements[$"{provider}.ingest"] = wrk;
                report.Add(provider, "ingest: attributed purchases, saturated", wrk.RequestsPerSecond, "events/s", "bare Kestrel", kestrel.Rps,
                    IngestThroughput(provider), ErrorNote(wrk));
                report.Add(provider, "ingest vs bare insert", wrk.RequestsPerSecond, "events/s", "bare insert", insert);

                // Most of a shop's purchases come from no advocate: no code, no click id, so attribution looks for
                // earlier clicks of the email and the address, and finds none.
                Log($"{provider}: ingest of unattributed purchases at saturation");
                var (plain, plainCpu) = await SaturateAsync(server, program, "u", ct, unattributed: true);
                report.Measurements[$"{provider}.ingestUnattributed"] = new { plain, cpuPer1000 = plainCpu };
                report.Add(provider, "ingest: unattributed purchases, saturated", plain.RequestsPerSecond, "events/s", "bare Kestrel",
                    kestrel.Rps, note: ErrorNote(plain));
                report.Add(provider, "server CPU per 1,000 unattributed events", plainCpu, "CPU s", "attributed", cpu);

                var rate = Math.Max(1, wrk.RequestsPerSecond / 2);
                Log($"{provider}: ingest latency at half that rate ({rate:N0} events/s, open loop)");
                var from = Stopwatch.GetTimestamp();
                var halfCpu = server.CpuSeconds();
                var half = await Load.OpenLoopAsync(_http, rate, settings.Duration,
                    n => EventRequest(api, program, "h0", n), null, ct);
                halfCpuPer1000 = half.Ok > 0 ? (server.CpuSeconds() - halfCpu) / half.Ok * 1000 : null;
                steadyRss = server.MeanRss(from, Stopwatch.GetTimestamp());
                report.Measurements[$"{provider}.halfLoad"] = half;
                var halfNote = half.Failed > 0 ? $"{half.Failed} of {half.Sent} failed" : null;
                report.Add(provider, "ingest p50 at half load", half.P50Ms, "ms", "bare Kestrel p50", kestrel.P50, note: halfNote);
                report.Add(provider, "ingest p99 at half load", half.P99Ms, "ms", "bare Kestrel p99", kestrel.P99, IngestP99, halfNote);
                Log($"  p50 {half.P50Ms:0.00} ms, p99 {half.P99Ms:0.00} ms, {half.Ok:N0} ok, {half.Failed} failed");

                if (await AcceptsAsyncAsync(api, program, ct))
                {
                    Log($"{provider}: ingest with Prefer: respond-async at saturation (answered once the event alone is durable)");
                    var (accepted, acceptCpu) = await SaturateAsync(server, program, "a", ct, warmUp: false, respondAsync: true);
                    report.Measurements[$"{provider}.ingestAccepted"] = new { accepted, cpuPer1000 = acceptCpu };
                    report.Add(provider, "ingest with Prefer: respond-async, saturated", accepted.RequestsPerSecond, "events/s",
                        "bare Kestrel", kestrel.Rps, AcceptThroughput, ErrorNote(accepted));
                    Log("  waiting for the accepted events to be processed");
                    await WaitQuietAsync(db, ct);
                }
                else
                {
                    report.Note($"{provider}: this build does not apply Prefer: respond-async; the accepted-ingest figure is not measured");
                }
            }
            else
            {
                report.Missing(provider, "ingest: attributed purchases, saturated", "events/s", "no events API in this build", IngestThroughput(provider));
                report.Missing(provider, "ingest p99 at half load", "ms", "no events API in this build", IngestP99);
            }

            if (hasWebhooks)
            {
                var endpoint = await api.RequireAsync(HttpMethod.Post, "/api/v1/webhook-endpoints", new JsonObject
                {
                    ["url"] = _receiver.ReceiveUrl,
                    ["description"] = "bench receiver",
                    ["format"] = "json",
                }, ct, HttpStatusCode.Created);
                program.EndpointId = (string)endpoint["id"]!;

                if (hasEvents)
                {
                    await FirstAttemptLatencyAsync(api, db, program, provider, ingest0 ?? 1, http, ct);
                    await WaitQuietAsync(db, ct);
                    // As a shop runs it: every event also fans out to the endpoint and is delivered while the load goes on.
                    Log($"{provider}: ingest at saturation with the endpoint");
                    var (withEndpoint, cpu) = await SaturateAsync(server, program, "e", ct);
                    report.Measurements[$"{provider}.ingestWithEndpoint"] = new { withEndpoint, cpuPer1000 = cpu };
                    report.Add(provider, "ingest with an endpoint, saturated", withEndpoint.RequestsPerSecond, "events/s",
                        "ingest without", ingest0, note: ErrorNote(withEndpoint));
                    report.Add(provider, "server CPU per 1,000 events with an endpoint", cpu, "CPU s", "without", cpuPer1000);
                }
                await WaitQuietAsync(db, ct);

                Log($"{provider}: delivery of {settings.DeliveryMessages:N0} queued messages");
                delivery0 = await DeliverAsync(server, db, seeder, program, provider, '1', ct);
                report.Add(provider, "delivery: queued messages → receiver", delivery0, "msg/s", "bare HttpClient", http.PostsPerSecond,
                    DeliveryThroughput, _lastDeliveryNote);
                report.Add(provider, "server CPU per 1,000 messages delivered", _lastDeliveryCpuPer1000, "CPU s", "bare HttpClient",
                    http.CpuPer1000);
            }
            else
            {
                report.Missing(provider, "delivery: queued messages → receiver", "msg/s", "no webhooks in this build", DeliveryThroughput);
            }
        }
        finally
        {
            peakRss = Math.Max(peakRss, server.PeakRss);
            await server.DisposeAsync();
        }

        // What a timed-out delivery run left behind must not leak into the next server's figures.
        await SettleAsync(db, ct);

        if (settings.GrowthRows > 0 && (hasEvents || hasWebhooks))
        {
            Log($"{provider}: growth: seeding {growthLabel} stored rows (server stopped)");
            await seeder.SeedHistoryAsync(settings.GrowthRows, '0', program!.CampaignId, program.EndpointId ?? "whe_none",
                _receiver.ReceiveUrl, hasWebhooks, ct);
            server = await StartServerAsync(db, provider, "referloop-1", ct);
            try
            {
                var api = new ReferloopApi(_http, server.BaseUrl, _adminKey);
                if (hasWebhooks)
                {
                    // As in the first run, ingest is measured with no endpoint to deliver to.
                    await api.RequireAsync(HttpMethod.Post, $"/api/v1/webhook-endpoints/{program.EndpointId}/disable", null, ct,
                        HttpStatusCode.OK, HttpStatusCode.NoContent);
                }
                if (hasEvents)
                {
                    Log($"{provider}: ingest at saturation with {growthLabel} stored");
                    var (wrk, _) = await SaturateAsync(server, program, "1", ct);
                    report.Measurements[$"{provider}.ingestGrown"] = wrk;
                    report.Add(provider, $"ingest with {growthLabel} stored", wrk.RequestsPerSecond, "events/s", "ingest at 0", ingest0,
                        Growth, ErrorNote(wrk));
                }
                if (hasWebhooks)
                {
                    await WaitQuietAsync(db, ct);
                    await api.RequireAsync(HttpMethod.Post, $"/api/v1/webhook-endpoints/{program.EndpointId}/enable", null, ct,
                        HttpStatusCode.OK, HttpStatusCode.NoContent);
                    Log($"{provider}: delivery of {settings.DeliveryMessages:N0} queued messages with {growthLabel} stored");
                    var grown = await DeliverAsync(server, db, seeder, program, provider, '2', ct);
                    report.Add(provider, $"delivery with {growthLabel} stored", grown, "msg/s", "delivery at 0", delivery0, Growth,
                        _lastDeliveryNote);
                }
            }
            finally
            {
                peakRss = Math.Max(peakRss, server.PeakRss);
                await server.DisposeAsync();
            }
        }

        if (hasEvents && program is not null)
        {
            await ClicksAsync(db, provider, program, cpuPer1000, ct);
        }

        report.Add(provider, "server RSS peak (VmHWM)", peakRss, "MB", "bare Kestrel peak", _kestrel!.Value.PeakRss, Memory);
        if (steadyRss is { } steady)
        {
            report.Add(provider, "server RSS steady (half load)", steady, "MB", "bare Kestrel steady", _kestrel!.Value.SteadyRss, Memory);
        }
        if (cpuPer1000 is { } cpuCost)
        {
            report.Add(provider, "server CPU per 1,000 events", cpuCost, "CPU s", "bare Kestrel", _kestrel!.Value.CpuPer1000, IngestCpu);
            if (halfCpuPer1000 is { } halfCost)
            {
                // Below saturation an event costs more: the work runs on cold caches and its threads wake and sleep.
                report.Add(provider, "server CPU per 1,000 events at half load", halfCost, "CPU s", "saturated", cpuCost);
            }
        }
    }

    /// <summary>
    /// Share-link visits at saturation, each from an address of its own, on a server of their own: the public rate
    /// limiter's budget per address is memory that the RSS rows, which describe the event loads, should not carry.
    /// </summary>
    private async Task ClicksAsync(BenchDatabase db, string provider, Fixture program, double? purchaseCpuPer1000, CancellationToken ct)
    {
        Log($"{provider}: share-link visits at saturation (wrk, {settings.Connections} connections, a new address each)");
        var server = await StartServerAsync(db, provider, "referloop-clicks", ct,
            environment: new Dictionary<string, string> { ["Http__TrustedProxies"] = "127.0.0.1" });
        try
        {
            async Task<(WrkResult Wrk, double CpuPer1000)> LoadAsync(TimeSpan duration, string name)
            {
                var cpu = server.CpuSeconds();
                var wrk = await Wrk.RunAsync(settings, tempDir, server.BaseUrl, duration, [program.RefsFile], name, ct, settings.ClicksScript);
                var answered = wrk.Requests - wrk.Errors;
                return (wrk, answered > 0 ? (server.CpuSeconds() - cpu) / answered * 1000 : double.NaN);
            }

            if (settings.Warmup > TimeSpan.Zero)
            {
                var (warm, warmCost) = await LoadAsync(settings.Warmup, "warmup-clicks");
                Log($"  warm-up: {warm.RequestsPerSecond:N0} visits/s, {warmCost:0.000} CPU s per 1,000");
            }
            var (visits, cost) = await LoadAsync(settings.Duration, "clicks");
            Log($"  {visits.RequestsPerSecond:N0} visits/s (wrk p50 {visits.P50Ms:0.0} ms, p99 {visits.P99Ms:0.0} ms), {visits.Errors} errors, " +
                $"{cost:0.000} CPU s per 1,000");
            report.Measurements[$"{provider}.clicks"] = new { visits, cpuPer1000 = cost };
            report.Add(provider, "share-link visits (a new click each), saturated", visits.RequestsPerSecond, "visits/s", "bare Kestrel",
                _kestrel!.Value.Rps, note: ErrorNote(visits));
            report.Add(provider, "server CPU per 1,000 visits", cost, "CPU s", "attributed", purchaseCpuPer1000);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private async Task<ServerProcess> StartServerAsync(BenchDatabase db, string provider, string name, CancellationToken ct,
        string? serverDll = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = ServerProcess.FreePort();
        var variables = new Dictionary<string, string?>(db.ServerEnvironment)
        {
            ["REFERLOOP_ADMIN_KEY"] = _adminKey,
            // Required outside Development, and the bench runs its servers as Production.
            ["PublicUrl"] = $"http://127.0.0.1:{port}",
            ["Webhooks__AllowPrivateNetworks"] = "true",
            // The same bound on concurrent POSTs to one receiver as the bare HttpClient ceiling.
            ["Webhooks__MaxConcurrencyPerEndpoint"] = settings.DeliveryConcurrency.ToString(),
            // As the deployment runs it (README, "Memory"): gen0 held at 16 MiB, not sized from the CPU's cache.
            ["DOTNET_GCgen0size"] = "0x1000000",
        };
        foreach (var (variable, value) in (environment ?? new Dictionary<string, string>()).Concat(settings.ServerEnvironment))
        {
            variables[variable] = value;
        }
        Log($"{provider}: starting Referloop ({name}) on port {port}");
        return await ServerProcess.StartAsync(name, serverDll ?? settings.ServerDll, Path.Combine(tempDir, provider), port, variables,
            "/health/ready", ct);
    }

    private static async Task<bool> RouteExistsAsync(ReferloopApi api, string path, CancellationToken ct)
    {
        var (status, _) = await api.SendAsync(HttpMethod.Post, path, new JsonObject(), ct);
        return status is not (HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed);
    }

    private async Task<Fixture> SetupProgramAsync(ReferloopApi api, string provider, bool hasEvents, CancellationToken ct)
    {
        Log($"{provider}: a campaign, {settings.Advocates} advocates and a click through each share link");
        var campaign = await api.RequireAsync(HttpMethod.Post, "/api/v1/campaigns", JsonNode.Parse("""
            {
              "name": "Bench campaign",
              "landingUrl": "https://shop.example.com/welcome",
              "attributionWindowDays": 30,
              "approval": "auto",
              "rewards": [
                { "recipient": "advocate", "trigger": "converted", "kind": "standard",
                  "incentive": { "type": "rebate", "amount": 10, "currency": "USD" } }
              ]
            }
            """), ct, HttpStatusCode.Created);
        var campaignId = (string)campaign["id"]!;
        var refs = new (string, string)[settings.Advocates];
        await Parallel.ForEachAsync(Enumerable.Range(0, settings.Advocates), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
            async (i, token) =>
            {
                var advocate = await api.RequireAsync(HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/participants", new JsonObject
                {
                    ["email"] = $"advocate-{i}@example.com",
                    ["name"] = $"Advocate {i}",
                }, token, HttpStatusCode.Created, HttpStatusCode.OK);
                var code = (string)advocate["code"]!;
                refs[i] = (code, await api.ClickAsync(code, token));
            });
        var refsFile = Path.Combine(tempDir, $"{provider}-refs.txt");
        await File.WriteAllLinesAsync(refsFile, refs.Select(r => $"{r.Item1} {r.Item2}"), ct);
        var program = new Fixture { CampaignId = campaignId, RefsFile = refsFile, Refs = [.. refs] };

        if (hasEvents)
        {
            // The load is only meaningful if its purchases are attributed, by code and by click id alike.
            for (var n = 0; n < 2; n++)
            {
                using var request = EventRequest(api, program, "check", n);
                using var response = await _http.SendAsync(request, ct);
                var text = await response.Content.ReadAsStringAsync(ct);
                if (response.StatusCode != HttpStatusCode.Accepted || JsonNode.Parse(text)?["attributed"]?.GetValue<bool>() != true)
                {
                    throw new BenchException($"a bench purchase was not accepted and attributed ({(int)response.StatusCode}): {text}");
                }
            }
        }
        return program;
    }

    private static HttpRequestMessage EventRequest(ReferloopApi api, Fixture program, string prefix, long n) =>
        api.Request(HttpMethod.Post, "/api/v1/events",
            EventBodies.Purchase(program.CampaignId, $"{prefix}-{n}", n, program.Refs[(int)(n % program.Refs.Count)]));

    /// <summary>
    /// wrk at saturation after a warm-up; returns the result and the server's CPU seconds per 1,000 accepted events.
    /// The warm-up is the same load for <c>BENCH_WARMUP</c> seconds, and again while tiered compilation is still at
    /// work: a slice that costs more than 10% less CPU per event than the cheapest before it means the server was still
    /// compiling, so more follow; the warm-up ends after two slices in a row without that (at most
    /// <see cref="MaxWarmupSlices"/>). One slice alone decides nothing: on a shared host a slice can come out dearer
    /// than the one before while the JIT is still far from done. A fresh server compiles for 20 s and more under this load.
    /// </summary>
    private async Task<(WrkResult Wrk, double CpuPer1000)> SaturateAsync(ServerProcess server, Fixture program, string run, CancellationToken ct,
        bool warmUp = true, bool respondAsync = false, bool unattributed = false)
    {
        var url = server.BaseUrl + "/api/v1/events";
        async Task<(WrkResult Wrk, double CpuPer1000)> LoadAsync(TimeSpan duration, string prefix, string name)
        {
            var cpu = server.CpuSeconds();
            var wrk = await Wrk.RunAsync(settings, tempDir, url, duration, [prefix, program.CampaignId, _adminKey, program.RefsFile, respondAsync ? "async" : "sync",
                unattributed ? "unattributed" : "attributed"], name, ct);
            var accepted = wrk.Requests - wrk.Errors;
            return (wrk, accepted > 0 ? (server.CpuSeconds() - cpu) / accepted * 1000 : double.NaN);
        }

        if (warmUp && settings.Warmup > TimeSpan.Zero)
        {
            var cheapest = double.PositiveInfinity;
            var flat = 0;
            for (var slice = 1; slice <= MaxWarmupSlices && flat < 2; slice++)
            {
                var (warm, cost) = await LoadAsync(settings.Warmup, $"w{run}{slice}", $"warmup-{run}-{slice}");
                Log($"  warm-up {slice}: {warm.RequestsPerSecond:N0} events/s, {cost:0.000} CPU s per 1,000");
                flat = cost < cheapest * 0.9 ? 0 : flat + 1;
                cheapest = Math.Min(cheapest, double.IsNaN(cost) ? cheapest : cost);
            }
        }
        var (wrk, cpuPer1000) = await LoadAsync(settings.Duration, $"i{run}", $"ingest-{run}");
        Log($"  {wrk.RequestsPerSecond:N0} events/s (wrk p50 {wrk.P50Ms:0.0} ms, p99 {wrk.P99Ms:0.0} ms), {wrk.Errors} errors, " +
            $"{cpuPer1000:0.000} CPU s per 1,000");
        return (wrk, cpuPer1000);
    }

    private const int MaxWarmupSlices = 6;

    private static string? ErrorNote(WrkResult wrk) =>
        wrk.Errors == 0 ? null : $"{wrk.Errors:N0} errors, {wrk.ErrorRate:P1} of requests";

    /// <summary>
    /// Events at a steady moderate rate while an endpoint listens; the receiver notes when the first message naming
    /// each event's order id arrives. Latency runs from the moment the event was due to be sent.
    /// </summary>
    private async Task FirstAttemptLatencyAsync(ReferloopApi api, BenchDatabase db, Fixture program, string provider, double ingestRate,
        (double PostsPerSecond, double P50, double P99, double CpuPer1000) http, CancellationToken ct)
    {
        await WaitQuietAsync(db, ct);
        // Moderate means well under what the server sustains: at most a quarter of the saturated ingest rate.
        var rate = (int)Math.Clamp(ingestRate / 4, 1, settings.LatencyRate);
        Log($"{provider}: event → first delivery attempt at {rate} events/s");
        if (settings.Warmup > TimeSpan.Zero)
        {
            // The server has not delivered anything yet: the same load, unmeasured, so the figure is of the steady state
            // (as every saturated load has its warm-up) rather than of the delivery path being compiled.
            await Load.OpenLoopAsync(_http, rate, settings.Warmup, n => EventRequest(api, program, "lw", n), null, ct);
            await WaitQuietAsync(db, ct);
        }
        await _receiver.ResetAsync(track: true, ct);
        var due = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        var load = await Load.OpenLoopAsync(_http, rate, settings.Duration, n => EventRequest(api, program, "l0", n),
            (n, at) => due[$"o-l0-{n}"] = at, ct);
        var arrivals = new Dictionary<string, long>();
        var deadline = Stopwatch.GetTimestamp() + 20 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            arrivals = await _receiver.ArrivalsAsync(ct);
            if (arrivals.Count(a => due.ContainsKey(a.Key)) >= load.Ok)
            {
                break;
            }
            await Task.Delay(250, ct);
        }
        await _receiver.ResetAsync(track: false, ct);
        var latencies = arrivals.Where(a => due.ContainsKey(a.Key))
            .Select(a => Stopwatch.GetElapsedTime(due[a.Key], a.Value).TotalMilliseconds)
            .Order()
            .ToArray();
        var missing = load.Ok - latencies.Length;
        var note = missing > 0 ? $"{missing} of {load.Ok} events had no message within 20 s" : null;
        var p50 = Load.Percentile(latencies, 50);
        var p99 = Load.Percentile(latencies, 99);
        report.Measurements[$"{provider}.firstAttempt"] = new
        {
            rate,
            load.Sent,
            load.Ok,
            load.Failed,
            received = latencies.Length,
            p50,
            p99,
            // The events' own answers meanwhile: how much of the way to the first attempt is the ingest itself.
            ingestP50 = load.P50Ms,
            ingestP99 = load.P99Ms,
        };
        report.Add(provider, $"event → first attempt p50 ({rate}/s)", p50, "ms", "bare POST p50", http.P50, FirstAttemptP50, note);
        report.Add(provider, $"event → first attempt p99 ({rate}/s)", p99, "ms", "bare POST p99", http.P99, FirstAttemptP99, note);
        Log($"  p50 {p50:0.00} ms, p99 {p99:0.00} ms over {latencies.Length:N0} events (the events' 202: p50 {load.P50Ms:0.00} ms, p99 {load.P99Ms:0.00} ms)");
    }

    private string? _lastDeliveryNote;
    private double? _lastDeliveryCpuPer1000;

    /// <summary>Queues messages straight into the outbox while the server runs and times their arrival at the receiver.</summary>
    private async Task<double?> DeliverAsync(ServerProcess server, BenchDatabase db, Seeder seeder, Fixture program, string provider,
        char tag, CancellationToken ct)
    {
        var count = settings.DeliveryMessages;
        // Only the queued messages count: others (retries and releases left by earlier loads) are reported apart.
        await _receiver.ResetAsync(track: false, ct, messages: Seeder.MessagePrefix(tag));
        // From the queueing to the last record: the fan-out, every attempt and its record are the server's work.
        var cpu = server.CpuSeconds();
        var queuedAt = Stopwatch.GetTimestamp();
        await seeder.QueueMessagesAsync(count, tag, program.CampaignId, ct);
        var deadline = Stopwatch.GetTimestamp() + (long)(settings.DeliveryTimeout.TotalSeconds * Stopwatch.Frequency);
        (long Count, long First, long Last, long Repeats, long Others) stats = default;
        var lastProgress = Stopwatch.GetTimestamp();
        var stalled = false;
        while (true)
        {
            var previous = stats.Count;
            stats = await _receiver.StatsAsync(ct);
            if (stats.Count - stats.Repeats >= count || Stopwatch.GetTimestamp() > deadline)
            {
                break;
            }
            if (stats.Count != previous)
            {
                lastProgress = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(lastProgress) > TimeSpan.FromSeconds(30))
            {
                stalled = true;
                break;
            }
            await Task.Delay(250, ct);
        }
        var seconds = (stats.Last - stats.First) / (double)Stopwatch.Frequency;
        double? rate = stats.Count > 1 && seconds > 0 ? (stats.Count - 1) / seconds : null;
        var drained = stats.Count > 0 ? (stats.Last - queuedAt) / (double)Stopwatch.Frequency : double.NaN;

        // Every attempt must be recorded, not only sent: count the deliveries the server marked succeeded.
        long recorded = 0;
        var recordDeadline = Stopwatch.GetTimestamp() + 15 * Stopwatch.Frequency;
        do
        {
            recorded = await db.ScalarAsync($"""
                SELECT COUNT(*) FROM webhook_deliveries
                WHERE "MessageId" >= '{Seeder.MessagePrefix(tag)}' AND "MessageId" < '{Seeder.MessagePrefix((char)(tag + 1))}'
                  AND "Status" = 'succeeded'
                """, ct);
            if (recorded >= Math.Min(stats.Count - stats.Repeats, count))
            {
                break;
            }
            await Task.Delay(250, ct);
        }
        while (Stopwatch.GetTimestamp() < recordDeadline);
        _lastDeliveryCpuPer1000 = recorded > 0 ? (server.CpuSeconds() - cpu) / recorded * 1000 : null;

        var notes = new List<string>();
        var arrived = stats.Count - stats.Repeats;
        if (arrived < count)
        {
            notes.Add($"{arrived:N0} of {count:N0} arrived {(stalled ? "before delivery stalled" : $"within {settings.DeliveryTimeout.TotalSeconds:0} s")}");
        }
        if (recorded < arrived)
        {
            notes.Add($"only {recorded:N0} recorded as succeeded");
        }
        if (stats.Repeats > 0)
        {
            notes.Add($"{stats.Repeats:N0} sent again");
        }
        _lastDeliveryNote = notes.Count > 0 ? string.Join("; ", notes) : null;
        report.Measurements[$"{provider}.delivery{tag}"] = new
        {
            queued = count,
            received = stats.Count,
            repeats = stats.Repeats,
            others = stats.Others,
            recorded,
            firstToLastSeconds = seconds,
            queueToLastSeconds = drained,
            messagesPerSecond = rate,
            cpuPer1000 = _lastDeliveryCpuPer1000,
        };
        Log($"  {stats.Count:N0} received in {seconds:0.0} s ({rate ?? double.NaN:N0} msg/s; {stats.Repeats:N0} of them again, and"
            + $" {stats.Others:N0} posts of other messages), {recorded:N0} recorded as succeeded");
        return rate;
    }

    /// <summary>Whether the server applies <c>Prefer: respond-async</c> (a build without it answers synchronously).</summary>
    private async Task<bool> AcceptsAsyncAsync(ReferloopApi api, Fixture program, CancellationToken ct)
    {
        using var probe = EventRequest(api, program, "probe-async", 0);
        probe.Headers.Add("Prefer", "respond-async");
        using var response = await _http.SendAsync(probe, ct);
        return response.StatusCode == HttpStatusCode.Accepted && response.Headers.Contains("Preference-Applied");
    }

    /// <summary>
    /// Waits until no accepted event waits in the inbox, nothing waits in the outbox and no delivery is pending, so one
    /// phase does not spill into the next.
    /// </summary>
    private async Task WaitQuietAsync(BenchDatabase db, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + 120 * Stopwatch.Frequency;
        long waiting = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            waiting = await CountOrZeroAsync(db, "SELECT COUNT(*) FROM event_inbox", ct)
                + await CountOrZeroAsync(db, """SELECT COUNT(*) FROM outbox WHERE "DispatchedAt" IS NULL""", ct)
                + await CountOrZeroAsync(db, """SELECT COUNT(*) FROM webhook_deliveries WHERE "Status" = 'pending'""", ct);
            if (waiting == 0)
            {
                return;
            }
            await Task.Delay(250, ct);
        }
        report.Note($"{db.Provider}: {waiting:N0} outbound messages or deliveries were still waiting after 120 s; the next figure may include them");
        Log($"  {waiting:N0} messages still waiting after 120 s; going on");
    }

    /// <summary>Marks whatever a cut-short delivery run left as done (server stopped), so it does not compete with the next phase.</summary>
    private static async Task SettleAsync(BenchDatabase db, CancellationToken ct)
    {
        await CountOrZeroAsync(db, """UPDATE outbox SET "DispatchedAt" = "CreatedAt" WHERE "DispatchedAt" IS NULL""", ct, execute: true);
        await CountOrZeroAsync(db, """UPDATE webhook_deliveries SET "Status" = 'failed' WHERE "Status" = 'pending'""", ct, execute: true);
    }

    private static async Task<long> CountOrZeroAsync(BenchDatabase db, string sql, CancellationToken ct, bool execute = false)
    {
        try
        {
            return execute ? await db.ExecuteAsync(sql, ct) : await db.ScalarAsync(sql, ct);
        }
        catch (System.Data.Common.DbException)
        {
            // This build has no such table or column: nothing of that kind can be waiting.
            return 0;
        }
    }
}
