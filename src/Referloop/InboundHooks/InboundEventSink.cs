using System.Text.Json.Nodes;

namespace Referloop.InboundHooks;

/// <summary>
/// What processing an inbound request came to: <see cref="Status"/> is the HTTP status answered to the sender,
/// <see cref="Result"/> the JSON answered and stored, <see cref="Reason"/> why it was not processed.
/// </summary>
public sealed record InboundOutcome(int Status, JsonNode? Result, string? Reason, IDictionary<string, string[]>? Errors = null)
{
    public bool Succeeded => Status is >= 200 and < 300;

    public static InboundOutcome Processed(JsonNode? result) => new(StatusCodes.Status200OK, result, null);

    /// <summary>The input was wrong; <paramref name="errors"/> name each field and the rule it broke.</summary>
    public static InboundOutcome Invalid(IDictionary<string, string[]> errors) =>
        new(StatusCodes.Status400BadRequest, null, "The payload is not valid: " +
            string.Join("; ", errors.Select(e => $"{e.Key} {string.Join(" ", e.Value)}")), errors);

    public static InboundOutcome Refused(int status, string reason) => new(status, null, reason);
}

/// <summary>
/// The referral engine's side of the <c>track</c> and <c>qualify</c> hooks: the hook receiver stores, parses and
/// validates the request, then hands the payload over here.
/// </summary>
public interface IInboundEventSink
{
    /// <summary>
    /// An event as <c>POST /api/v1/events</c> takes it (type, email, orderId, purchaseValue…); with
    /// <paramref name="idempotencyKey"/> (the hook's request key, made unique to the hook), a repeat of it is recorded once.
    /// </summary>
    Task<InboundOutcome> TrackAsync(string campaignId, JsonObject payload, string? idempotencyKey, CancellationToken ct);

    /// <summary>Qualifies the referred user whose unique code is <paramref name="code"/>.</summary>
    Task<InboundOutcome> QualifyAsync(string campaignId, string code, JsonObject payload, CancellationToken ct);
}
