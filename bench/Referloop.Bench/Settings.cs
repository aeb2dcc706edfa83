namespace Referloop.Bench;

/// <summary>Everything a run can be tuned by, read from environment variables (see docs/performance.md).</summary>
internal sealed record Settings
{
    public required string Root { get; init; }
    public required IReadOnlyList<string> Providers { get; init; }
    public bool Quick { get; init; }
    public TimeSpan Duration { get; init; }
    public TimeSpan Warmup { get; init; }
    public int Connections { get; init; }
    public int Threads { get; init; }
    public int DeliveryConcurrency { get; init; }
    public int DeliveryMessages { get; init; }
    public TimeSpan DeliveryTimeout { get; init; }
    public int GrowthRows { get; init; }
    public int LatencyRate { get; init; }
    public int Advocates { get; init; }
    public required string PostgresConnection { get; init; }
    public required string ResultsDir { get; init; }
    public bool KeepTemp { get; init; }
    /// <summary>Extra environment for the Referloop server only (<c>BENCH_SERVER_ENV="A=1;B=2"</c>), for trying runtime knobs.</summary>
    public IReadOnlyDictionary<string, string> ServerEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Another build to compare the server with (<c>BENCH_COMPARE_DLL</c>): both run side by side and take turns at the
    /// same saturated ingest, so a slow spell of a shared host weighs on both alike (<c>Bench.CompareAsync</c>).
    /// </summary>
    public string? CompareDll { get; init; }

    /// <summary>Turns each build takes in a comparison.</summary>
    public int CompareRounds { get; init; }

    /// <summary>In a comparison, each server also has an endpoint at the bare receiver (<c>BENCH_COMPARE_ENDPOINT=1</c>).</summary>
    public bool CompareWithEndpoint { get; init; }

    /// <summary>The server to measure: the Release build, or <c>BENCH_SERVER_DLL</c> (e.g. a published build).</summary>
    public string ServerDll => Text("BENCH_SERVER_DLL") ?? Path.Combine(Root, "src/Referloop/bin/Release/net10.0/Referloop.dll");
    public string BareServerDll => Path.Combine(Root, "bench/BareServer/bin/Release/net10.0/BareServer.dll");
    public string EventsScript => Path.Combine(AppContext.BaseDirectory, "wrk/events.lua");
    public string ClicksScript => Path.Combine(AppContext.BaseDirectory, "wrk/clicks.lua");

    public static Settings FromEnvironment(string root)
    {
        var quick = Flag("QUICK");
        var providers = (Text("BENCH_PROVIDERS") ?? "sqlite,postgres")
            .Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.ToLowerInvariant() switch
            {
                "sqlite" => "sqlite",
                "postgres" or "postgresql" or "pg" => "postgres",
                var other => throw new ArgumentException($"BENCH_PROVIDERS: unknown provider '{other}' (use sqlite, postgres or both)."),
            })
            .Distinct()
            .ToList();
        if (providers.Count == 0)
        {
            throw new ArgumentException("BENCH_PROVIDERS names no provider.");
        }
        return new Settings
        {
            Root = root,
            Providers = providers,
            Quick = quick,
            Duration = TimeSpan.FromSeconds(Number("BENCH_DURATION", quick ? 3 : 10, 1, 600)),
            // One slice of warm-up; more follow while the CPU per event still falls (tiered compilation at work).
            Warmup = TimeSpan.FromSeconds(Number("BENCH_WARMUP", quick ? 3 : 10, 0, 60)),
            Connections = Number("BENCH_CONNECTIONS", 32, 1, 1024),
            Threads = Number("BENCH_THREADS", 2, 1, 64),
            DeliveryConcurrency = Number("BENCH_DELIVERY_CONCURRENCY", 8, 1, 1024),
            DeliveryMessages = Number("BENCH_DELIVERY_MESSAGES", quick ? 5_000 : 100_000, 100, 10_000_000),
            DeliveryTimeout = TimeSpan.FromSeconds(Number("BENCH_DELIVERY_TIMEOUT", quick ? 20 : 45, 5, 3600)),
            GrowthRows = Number("BENCH_GROWTH_ROWS", quick ? 50_000 : 1_000_000, 0, 100_000_000),
            LatencyRate = Number("BENCH_LATENCY_RATE", 50, 1, 100_000),
            Advocates = Number("BENCH_ADVOCATES", quick ? 20 : 100, 1, 100_000),
            PostgresConnection = Text("REFERLOOP_BENCH_PG")
                ?? "Host=localhost;Database=referloop_bench;Username=referloop_bench;Password=referloop_bench",
            ResultsDir = Text("BENCH_RESULTS") ?? Path.Combine(root, "bench/results"),
            KeepTemp = Flag("BENCH_KEEP_TEMP"),
            ServerEnvironment = Assignments("BENCH_SERVER_ENV"),
            CompareDll = Text("BENCH_COMPARE_DLL") is { } other ? Path.GetFullPath(other) : null,
            CompareRounds = Number("BENCH_COMPARE_ROUNDS", 6, 1, 100),
            CompareWithEndpoint = Flag("BENCH_COMPARE_ENDPOINT"),
        };
    }

    private static string? Text(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    private static Dictionary<string, string> Assignments(string name) =>
        (Text(name) ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(pair => pair[0], pair => pair.Length == 2 ? pair[1] : throw new ArgumentException($"{name}: '{pair[0]}' is not NAME=value."));

    private static bool Flag(string name) => Text(name) is "1" or "true" or "yes";

    private static int Number(string name, int fallback, int min, int max)
    {
        if (Text(name) is not { } text)
        {
            return fallback;
        }
        if (!int.TryParse(text.TrimEnd('s'), out var value) || value < min || value > max)
        {
            throw new ArgumentException($"{name}='{text}' must be a whole number from {min} to {max}.");
        }
        return value;
    }
}
