using System.Runtime.InteropServices;
using Referloop.Bench;

// Usage: dotnet bench/Referloop.Bench/bin/Release/net10.0/Referloop.Bench.dll <repository root>
// (./bench.sh builds, installs wrk and runs this). Settings come from environment variables; see docs/performance.md.
var root = Path.GetFullPath(args.Length > 0 ? args[0] : Directory.GetCurrentDirectory());
Settings settings;
try
{
    settings = Settings.FromEnvironment(root);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancel.Cancel();
});
// Whatever happens, no server or load generator outlives the run.
AppDomain.CurrentDomain.ProcessExit += (_, _) => ChildProcess.KillAll();

var tempDir = Directory.CreateTempSubdirectory("referloop-bench-").FullName;
var report = new Report();
var bench = new Bench(settings, report, tempDir);
try
{
    // A hard stop for a run that hangs somewhere no other timeout covers.
    cancel.CancelAfter(TimeSpan.FromMinutes(settings.Quick ? 15 : 60));
    await bench.RunAsync(cancel.Token);
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    report.Error("the run was interrupted or exceeded its time limit");
}
catch (BenchException e)
{
    report.Error(e.Message);
}
catch (Exception e)
{
    report.Error(e.ToString());
}
finally
{
    ChildProcess.KillAll();
    if (settings.KeepTemp)
    {
        Console.WriteLine($"logs and data kept in {tempDir} (remove it when done)");
    }
    else
    {
        try
        {
            Directory.Delete(tempDir, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"bench: could not remove {tempDir}: {e.Message}");
        }
        if (report.HasErrors)
        {
            Console.WriteLine("servers' logs were removed with the temporary folder; run with BENCH_KEEP_TEMP=1 to keep them");
        }
    }
}

Console.WriteLine();
Console.WriteLine(report.Table());
Directory.CreateDirectory(settings.ResultsDir);
var json = report.Json(settings);
// A comparison of two builds is not a run of the bench: it leaves latest.json alone.
var latest = Path.Combine(settings.ResultsDir, settings.CompareDll is null ? "latest.json" : $"compare-{report.StartedAt:yyyyMMdd-HHmmss}.json");
await File.WriteAllTextAsync(latest, json);
if (settings.CompareDll is null)
{
    await File.WriteAllTextAsync(Path.Combine(settings.ResultsDir, $"{report.StartedAt:yyyyMMdd-HHmmss}.json"), json);
}
Console.WriteLine($"results: {Path.GetRelativePath(root, latest)}");
return report.HasErrors ? 1 : 0;
