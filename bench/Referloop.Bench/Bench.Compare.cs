namespace Referloop.Bench;

/// <summary>
/// Two builds side by side (<c>BENCH_COMPARE_DLL</c>): each gets a database, a campaign and advocates of its own, then
/// the two take turns at the same saturated ingest, the order swapped every round. On a shared host the speed of the
/// machine drifts by more than most changes are worth between two runs minutes apart; turns of a few seconds see
/// the same drift, so the ratio of each round's pair is the figure to read, with the median over the rounds.
/// </summary>
internal sealed partial class Bench
{
    private async Task CompareAsync(string provider, string otherDll, CancellationToken ct)
    {
        var builds = new[] { ("this", settings.ServerDll), ("other", otherDll) };
        Log($"{provider}: comparing {settings.ServerDll} (this) with {otherDll} (other), {settings.CompareRounds} rounds " +
            $"of {settings.Duration.TotalSeconds:0} s each{(settings.CompareWithEndpoint ? ", with a webhook endpoint" : "")}");
        var sides = new List<(string Name, ServerProcess Server, Fixture Program)>();
        var databases = new List<BenchDatabase>();
        try
        {
            foreach (var (name, dll) in builds)
            {
                var db = BenchDatabase.Create(provider, settings, tempDir, name);
                await db.ResetAsync(ct);
                databases.Add(db);
                var server = await StartServerAsync(db, provider, $"referloop-{name}", ct, dll);
                sides.Add((name, server, default!));
                var api = new ReferloopApi(_http, server.BaseUrl, _adminKey);
                var program = await SetupProgramAsync(api, $"{provider}-{name}", true, ct);
                if (settings.CompareWithEndpoint)
                {
                    // Every event then also fans out to an endpoint and is delivered, while the load goes on.
                    await api.RequireAsync(HttpMethod.Post, "/api/v1/webhook-endpoints", new System.Text.Json.Nodes.JsonObject
                    {
                        ["url"] = _receiver.ReceiveUrl,
                        ["description"] = "bench receiver",
                        ["format"] = "json",
                    }, ct, System.Net.HttpStatusCode.Created);
                }
                sides[^1] = (name, server, program);
            }

            var rates = sides.ToDictionary(s => s.Name, _ => new List<double>());
            var cpus = sides.ToDictionary(s => s.Name, _ => new List<double>());
            var ratios = new List<double>();
            for (var round = 0; round < settings.CompareRounds; round++)
            {
                var turn = round % 2 == 0 ? sides : [sides[1], sides[0]];
                foreach (var (name, server, program) in turn)
                {
                    // The other build's deliveries from its turn would otherwise run into this one.
                    foreach (var db in databases)
                    {
                        await WaitQuietAsync(db, ct);
                    }
                    Log($"{provider}: round {round + 1}, {name}");
                    // Only the first round warms up: the same server keeps its compiled code and caches between turns.
                    var (wrk, cpu) = await SaturateAsync(server, program, $"{name[0]}{round}", ct, warmUp: round == 0);
                    rates[name].Add(wrk.RequestsPerSecond);
                    cpus[name].Add(cpu);
                }
                ratios.Add(rates["other"][round] / rates["this"][round]);
            }

            report.Measurements[$"{provider}.compare"] = new { other = otherDll, rates, cpus, ratios };
            foreach (var (name, _, _) in sides)
            {
                report.Add(provider, $"ingest, {name} build (median of {settings.CompareRounds})", Median(rates[name]), "events/s");
                report.Add(provider, $"CPU per 1,000 events, {name} build", Median(cpus[name]), "CPU s");
            }
            report.Add(provider, "ingest, other ÷ this (median of the rounds)", Median(ratios), "×",
                note: $"rounds: {string.Join(", ", ratios.Select(r => r.ToString("0.00")))}");
        }
        finally
        {
            foreach (var side in sides)
            {
                await side.Server.DisposeAsync();
            }
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2]
            : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
