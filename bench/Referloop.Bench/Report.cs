using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Referloop.Bench;

/// <summary>A target of issue 8: a figure must be at least or at most a bound, on its value or on its ratio.</summary>
internal sealed record Target(string Text, Func<double, double, bool> Check);

/// <summary>One line of the table: a figure of Referloop beside the ceiling it is compared with.</summary>
internal sealed record Row(
    string Provider,
    string Figure,
    double? Value,
    string Unit,
    string? CeilingName,
    double? Ceiling,
    string? TargetText,
    bool? Pass,
    string? Note)
{
    /// <summary>Value over ceiling; for latencies and memory, where less is better, it reads "times the ceiling".</summary>
    public double? Ratio => Value is { } v && Ceiling is { } c && c > 0 && !double.IsNaN(v) ? v / c : null;
}

internal sealed class Report
{
    private readonly List<Row> _rows = [];
    private readonly List<string> _errors = [];
    private readonly List<string> _notes = [];

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;
    public Dictionary<string, object?> Measurements { get; } = [];

    public void Add(string provider, string figure, double? value, string unit, string? ceilingName = null, double? ceiling = null,
        Target? target = null, string? note = null)
    {
        bool? pass = null;
        if (target is not null && value is { } v && !double.IsNaN(v))
        {
            var ratio = ceiling is { } c && c > 0 ? v / c : double.NaN;
            pass = target.Check(v, ratio);
        }
        _rows.Add(new Row(provider, figure, value, unit, ceilingName, ceiling, target?.Text, target is null ? null : pass ?? false, note));
    }

    /// <summary>A figure that could not be measured: the row stays in the table, with why.</summary>
    public void Missing(string provider, string figure, string unit, string why, Target? target = null) =>
        _rows.Add(new Row(provider, figure, null, unit, null, null, target?.Text, target is null ? null : false, why));

    public void Error(string message) => _errors.Add(message);

    public void Note(string message) => _notes.Add(message);

    public bool HasErrors => _errors.Count > 0;

    public string Table()
    {
        var header = new[] { "provider", "figure", "value", "ceiling", "ratio", "target", "result" };
        var lines = _rows.Select(r => new[]
        {
            r.Provider,
            r.Figure,
            r.Value is { } v ? $"{Format(v)} {r.Unit}" : "n/a",
            r.Ceiling is { } c ? $"{Format(c)} ({r.CeilingName})" : "",
            r.Ratio is { } ratio ? ratio.ToString(ratio switch { >= 10 => "0.0", >= 0.1 => "0.00", _ => "0.000" }, CultureInfo.InvariantCulture) + "×" : "",
            r.TargetText ?? "",
            r.Pass switch { true => "PASS", false => "FAIL", null => "" } + (r.Note is null ? "" : (r.Pass is null ? "" : " ") + $"({r.Note})"),
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, lines.Count == 0 ? 0 : lines.Max(l => l[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(string[] cells) => text.AppendLine(string.Join("  ", cells.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        Line(header);
        Line(widths.Select(w => new string('-', w)).ToArray());
        foreach (var line in lines)
        {
            Line(line);
        }
        var targets = _rows.Where(r => r.Pass is not null).ToList();
        text.AppendLine();
        text.AppendLine($"targets: {targets.Count(r => r.Pass == true)} passed, {targets.Count(r => r.Pass == false)} failed");
        foreach (var note in _notes)
        {
            text.AppendLine($"note: {note}");
        }
        foreach (var error in _errors)
        {
            text.AppendLine($"error: {error}");
        }
        return text.ToString();
    }

    public string Json(Settings settings) => JsonSerializer.Serialize(new
    {
        startedAt = StartedAt,
        finishedAt = DateTimeOffset.UtcNow,
        machine = new
        {
            cores = Environment.ProcessorCount,
            os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            dotnet = Environment.Version.ToString(),
            loadAverage = LoadAverage(),
        },
        settings = new
        {
            providers = settings.Providers,
            quick = settings.Quick,
            durationSeconds = settings.Duration.TotalSeconds,
            warmupSeconds = settings.Warmup.TotalSeconds,
            connections = settings.Connections,
            threads = settings.Threads,
            deliveryConcurrency = settings.DeliveryConcurrency,
            deliveryMessages = settings.DeliveryMessages,
            growthRows = settings.GrowthRows,
            latencyRate = settings.LatencyRate,
            advocates = settings.Advocates,
        },
        rows = _rows.Select(r => new
        {
            provider = r.Provider,
            figure = r.Figure,
            value = Finite(r.Value),
            unit = r.Unit,
            ceilingName = r.CeilingName,
            ceiling = Finite(r.Ceiling),
            ratio = Finite(r.Ratio),
            target = r.TargetText,
            pass = r.Pass,
            note = r.Note,
        }),
        measurements = Measurements,
        notes = _notes,
        errors = _errors,
    }, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never });

    private static double? Finite(double? value) => value is { } v && double.IsFinite(v) ? Math.Round(v, 4) : null;

    private static string? LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static string Format(double value) => value switch
    {
        double.NaN => "n/a",
        >= 1000 => value.ToString("N0", CultureInfo.InvariantCulture),
        >= 100 => value.ToString("0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("0.0", CultureInfo.InvariantCulture),
        _ => value.ToString("0.00", CultureInfo.InvariantCulture),
    };
}
