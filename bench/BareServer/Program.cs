using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

// The raw ceilings of this machine, measured in the same run as Referloop: a bare minimal API that reads the same
// event body and answers 202, and a bare webhook receiver that answers 200 and counts what arrives.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, BareJson.Default));

var app = builder.Build();
var receiver = new Receiver();

app.MapPost("/api/v1/events", (EventBody body) => TypedResults.Accepted((string?)null));

app.MapPost("/receive", async (HttpRequest request) =>
{
    using var reader = new StreamReader(request.Body, Encoding.UTF8);
    receiver.Record(await reader.ReadToEndAsync());
    return TypedResults.Ok();
});

app.MapGet("/stats", () => TypedResults.Ok(receiver.Stats()));
app.MapPost("/reset", (bool? track) =>
{
    receiver.Reset(track ?? false);
    return TypedResults.NoContent();
});
app.MapGet("/arrivals", () => TypedResults.Ok(receiver.Arrivals()));

app.Run();

/// <summary>
/// Counts deliveries and, while tracking, remembers when the first message naming each order id arrived.
/// Times are <see cref="Stopwatch"/> timestamps: a monotonic clock shared by every process on the machine.
/// </summary>
internal sealed partial class Receiver
{
    private long _count;
    private long _first;
    private long _last;
    private volatile bool _track;
    private readonly ConcurrentDictionary<string, long> _arrivals = new();

    public void Record(string body)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.CompareExchange(ref _first, now, 0);
        Interlocked.Exchange(ref _last, now);
        Interlocked.Increment(ref _count);
        if (_track && OrderId().Match(body) is { Success: true } match)
        {
            _arrivals.TryAdd(match.Groups[1].Value, now);
        }
    }

    public void Reset(bool track)
    {
        _arrivals.Clear();
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _first, 0);
        Interlocked.Exchange(ref _last, 0);
        _track = track;
    }

    public ReceiverStats Stats() => new(Interlocked.Read(ref _count), Interlocked.Read(ref _first), Interlocked.Read(ref _last),
        Stopwatch.Frequency);

    public Dictionary<string, long> Arrivals() => new(_arrivals);

    // Referral events carry "orderId", the conversion callback "orderID".
    [GeneratedRegex("\"orderI[dD]\"\\s*:\\s*\"([^\"]+)\"")]
    private static partial Regex OrderId();
}

internal sealed record ReceiverStats(long Count, long First, long Last, long Frequency);

/// <summary>The shape of Referloop's event body, so that the ceiling pays for the same deserialization.</summary>
internal sealed record EventBody(
    string? CampaignId,
    string? Type,
    string? Email,
    string? Name,
    string? ReferralCode,
    string? ClickId,
    string? OrderId,
    decimal? PurchaseValue,
    string? Currency,
    string? Ip,
    string? UserAgent,
    Dictionary<string, string>? Properties);

[JsonSerializable(typeof(EventBody))]
[JsonSerializable(typeof(ReceiverStats))]
[JsonSerializable(typeof(Dictionary<string, long>))]
internal sealed partial class BareJson : JsonSerializerContext;
