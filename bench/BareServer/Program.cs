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
    receiver.Record(await reader.ReadToEndAsync(), request.Headers["webhook-id"].ToString());
    return TypedResults.Ok();
});

app.MapGet("/stats", () => TypedResults.Ok(receiver.Stats()));
app.MapPost("/reset", (bool? track, string? messages) =>
{
    receiver.Reset(track ?? false, messages);
    return TypedResults.NoContent();
});
app.MapGet("/arrivals", () => TypedResults.Ok(receiver.Arrivals()));

app.Run();

/// <summary>
/// Counts deliveries and, while tracking, remembers when the first message naming each order id arrived. When told
/// which messages to count (a <c>webhook-id</c> prefix), it counts only those, how many of them came again, and how
/// many posts were of other messages. Times are <see cref="Stopwatch"/> timestamps: a monotonic clock shared by every
/// process on the machine.
/// </summary>
internal sealed partial class Receiver
{
    private long _count;
    private long _first;
    private long _last;
    private long _repeats;
    private long _others;
    private volatile bool _track;
    private volatile string? _messages;
    private readonly ConcurrentDictionary<string, long> _arrivals = new();
    private readonly ConcurrentDictionary<string, byte> _seen = new();

    public void Record(string body, string webhookId)
    {
        var now = Stopwatch.GetTimestamp();
        if (_messages is { } prefix)
        {
            if (!webhookId.StartsWith(prefix, StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _others);
                return;
            }
            if (!_seen.TryAdd(webhookId, 0))
            {
                Interlocked.Increment(ref _repeats);
            }
        }
        Interlocked.CompareExchange(ref _first, now, 0);
        Interlocked.Exchange(ref _last, now);
        Interlocked.Increment(ref _count);
        if (_track && OrderId().Match(body) is { Success: true } match)
        {
            _arrivals.TryAdd(match.Groups[1].Value, now);
        }
    }

    public void Reset(bool track, string? messages)
    {
        _arrivals.Clear();
        _seen.Clear();
        _messages = string.IsNullOrEmpty(messages) ? null : messages;
        Interlocked.Exchange(ref _repeats, 0);
        Interlocked.Exchange(ref _others, 0);
        Interlocked.Exchange(ref _count, 0);
        Interlocked.Exchange(ref _first, 0);
        Interlocked.Exchange(ref _last, 0);
        _track = track;
    }

    public ReceiverStats Stats() => new(Interlocked.Read(ref _count), Interlocked.Read(ref _first), Interlocked.Read(ref _last),
        Stopwatch.Frequency, Interlocked.Read(ref _repeats), Interlocked.Read(ref _others));

    public Dictionary<string, long> Arrivals() => new(_arrivals);

    // Referral events carry "orderId", the conversion callback "orderID".
    [GeneratedRegex("\"orderI[dD]\"\\s*:\\s*\"([^\"]+)\"")]
    private static partial Regex OrderId();
}

/// <param name="Count">Posts counted (of the messages named, when the reset named them), repeats included.</param>
internal sealed record ReceiverStats(long Count, long First, long Last, long Frequency, long Repeats, long Others);

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
