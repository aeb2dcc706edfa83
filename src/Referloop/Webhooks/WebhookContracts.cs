using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Referloop.Http;

namespace Referloop.Webhooks;

public sealed record WebhookEndpointInput(
    [Required, Url, StringLength(2048)] string? Url,
    [StringLength(500)] string? Description,
    [Values(typeof(EventTypes))] List<string>? EventTypes,
    [StringLength(40)] string? CampaignId,
    [Values(typeof(WebhookFormat))] string? Format,
    bool? Enabled,
    [Range(1, 10_000)] int? RateLimitPerSecond,
    Dictionary<string, string>? Headers,
    [Values(typeof(WebhookSigning))] string? Signing = null,
    bool? RetryUntilAcknowledged = null) : IValidatable
{
    /// <summary>Event types an endpoint may subscribe to (and send a test message of).</summary>
    public static readonly string[] Subscribable = Webhooks.EventTypes.All;

    /// <summary>Headers Referloop sets itself; a custom header may not replace them.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
    {
        "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host",
        "transfer-encoding", "connection", "x-request-id", "user-agent", "expect", "upgrade", "te", "trailer",
    };

    public void Validate(ValidationErrors errors)
    {
        errors.HttpUrl("url", Url);
        errors.MaxLength("description", Description, 500);
        if (EventTypes is not null)
        {
            for (var i = 0; i < EventTypes.Count; i++)
            {
                if (!Subscribable.Contains(EventTypes[i], StringComparer.Ordinal))
                {
                    errors.Add($"eventTypes[{i}]", $"must be one of: {string.Join(", ", Subscribable)} (got '{EventTypes[i]}').");
                }
            }
        }
        errors.MaxLength("campaignId", CampaignId, 40);
        if (Format is not null)
        {
            errors.OneOf("format", Format, WebhookFormat.All);
        }
        errors.Range("rateLimitPerSecond", RateLimitPerSecond, 1, 10_000);
        if (Signing is not null)
        {
            errors.OneOf("signing", Signing, WebhookSigning.All);
        }
        if (Headers is not null)
        {
            if (Headers.Count > 20)
            {
                errors.Add("headers", "must have at most 20 headers.");
            }
            foreach (var (name, value) in Headers)
            {
                if (name.Length is 0 or > 100 || !name.All(IsTokenChar))
                {
                    errors.Add($"headers.{name}", "must be a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~).");
                }
                else if (Reserved.Contains(name))
                {
                    errors.Add($"headers.{name}", "is set by Referloop and cannot be replaced.");
                }
                else if (value is null || value.Length > 1000 || value.Any(c => c is (< ' ' and not '\t') or > '~'))
                {
                    // HTTP sends header values as ASCII: anything else could never be sent.
                    errors.Add($"headers.{name}", "must be a single line of at most 1000 printable ASCII characters.");
                }
            }
        }
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);
}

public sealed record RotateSecretInput([Range(0, 720)] int? OverlapHours) : IValidatable
{
    public void Validate(ValidationErrors errors) => errors.Range("overlapHours", OverlapHours, 0, 720);
}

public sealed record RecoverInput([Required] DateTimeOffset? Since) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Since is null)
        {
            errors.Add("since", "is required: an ISO-8601 instant such as 2026-11-20T00:00:00Z.");
        }
    }
}

public sealed record TestMessageInput([Required, Values(typeof(EventTypes))] string? EventType) : IValidatable
{
    public void Validate(ValidationErrors errors) => errors.OneOf("eventType", EventType, WebhookEndpointInput.Subscribable);
}

public sealed record DeliveryListQuery([property: Values(typeof(DeliveryStatus))] string? Status, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Status is not null)
        {
            errors.OneOf("status", Status, DeliveryStatus.All);
        }
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

public sealed record WebhookEndpointResponse(
    string Id,
    string Url,
    string? Description,
    IReadOnlyList<string> EventTypes,
    string? CampaignId,
    string Format,
    bool Enabled,
    string? DisabledReason,
    DateTimeOffset? DisabledAt,
    int? RateLimitPerSecond,
    IReadOnlyDictionary<string, string> Headers,
    DateTimeOffset? PreviousSecretExpiresAt,
    DateTimeOffset? FailingSince,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>Only in the answer that creates an <c>hmac</c> endpoint.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Secret { get; init; }

    /// <summary><c>hmac</c> (<c>v1</c> signatures) or <c>ed25519</c> (<c>v1a</c>).</summary>
    public string Signing { get; init; } = WebhookSigning.Hmac;

    /// <summary><c>ed25519</c> only: the <c>whpk_…</c> key receivers verify with.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PublicKey { get; init; }

    /// <summary><c>ed25519</c> only, during a rotation's overlap: the key that still signs too.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PreviousPublicKey { get; init; }

    /// <summary>
    /// <c>referral.approved</c> messages are retried every 10 h after the schedule runs out, until a 2xx or a cancel;
    /// on by default when the endpoint receives <c>referral.approved</c>.
    /// </summary>
    public bool RetryUntilAcknowledged { get; init; }

    public static WebhookEndpointResponse From(WebhookEndpoint e, DateTimeOffset now) => new(e.Id, e.Url, e.Description,
        e.EventTypes, e.CampaignId, e.Format, e.Enabled, e.DisabledReason, e.DisabledAt, e.RateLimitPerSecond, e.Headers,
        e.PreviousSecretExpiresAt > now ? e.PreviousSecretExpiresAt : null, e.FailingSince, e.CreatedAt, e.UpdatedAt)
    {
        Signing = e.Signing,
        RetryUntilAcknowledged = e.RetryUntilAcknowledged,
        PublicKey = e.PublicKey,
        PreviousPublicKey = e.PreviousSecretExpiresAt > now ? e.PreviousPublicKey : null,
    };
}

/// <summary>
/// What signs: for an <c>hmac</c> endpoint the secret(s); for an <c>ed25519</c> endpoint only the public key(s),
/// since the private key never leaves the server.
/// </summary>
public sealed record EndpointSecretResponse(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Secret,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? PreviousSecret,
    DateTimeOffset? PreviousSecretExpiresAt)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PublicKey { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PreviousPublicKey { get; init; }

    public static EndpointSecretResponse From(WebhookEndpoint e, DateTimeOffset now)
    {
        var overlapping = e.PreviousSecretExpiresAt > now;
        return e.Signing == WebhookSigning.Ed25519
            ? new(null, null, overlapping ? e.PreviousSecretExpiresAt : null)
            {
                PublicKey = e.PublicKey,
                PreviousPublicKey = overlapping ? e.PreviousPublicKey : null,
            }
            : new(e.Secret, overlapping ? e.PreviousSecret : null, overlapping ? e.PreviousSecretExpiresAt : null);
    }
}

public sealed record AttemptResponse(string Id, int Number, string RequestId, string Method, string Url, int? StatusCode,
    long LatencyMs, string? ResponseExcerpt, string? Error, DateTimeOffset AttemptedAt,
    IReadOnlyDictionary<string, string>? RequestHeaders)
{
    public static AttemptResponse From(WebhookAttempt a) =>
        new(a.Id, a.Number, a.RequestId, a.Method, a.Url, a.StatusCode, a.LatencyMs, a.ResponseExcerpt, a.Error, a.AttemptedAt,
            SentHeaders.Read(a.RequestHeaders));
}

/// <summary>One message for one endpoint: <c>id</c> is the delivery (<c>dlv_…</c>), <c>messageId</c> the <c>webhook-id</c>.</summary>
public sealed record DeliveryResponse(
    string Id,
    string MessageId,
    string EndpointId,
    string Type,
    [property: Values(typeof(DeliveryStatus))] string Status,
    int AttemptCount,
    DateTimeOffset? NextAttemptAt,
    int? LastStatusCode,
    string? LastError,
    bool Test,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt,
    IReadOnlyList<AttemptResponse> Attempts)
{
    /// <summary>
    /// Retried until the receiver answers 2xx or a person cancels it (a <c>referral.approved</c> to an endpoint with
    /// <c>retryUntilAcknowledged</c>): while pending, rewards wait for it, and the dashboard shows it as waiting.
    /// </summary>
    public bool RetryUntilAcknowledged { get; init; }

    /// <param name="d">With its message, and its endpoint for <see cref="RetryUntilAcknowledged"/>.</param>
    public static DeliveryResponse From(WebhookDelivery d) => new(d.Id, d.MessageId, d.EndpointId, d.Message!.Type, d.Status,
        d.Attempts, d.Status == DeliveryStatus.Pending ? d.NextAttemptAt : null, d.LastStatusCode, d.LastError, d.IsTest,
        d.CreatedAt, d.CompletedAt, d.AttemptLog.OrderBy(a => a.Number).Select(AttemptResponse.From).ToList())
    {
        RetryUntilAcknowledged = RetriesUntilAcknowledged(d, d.Endpoint),
    };

    public static bool RetriesUntilAcknowledged(WebhookDelivery d, WebhookEndpoint? endpoint) =>
        !d.IsTest && endpoint?.RetriesUntilAcknowledged(d.Message!.Type) == true;
}

/// <summary>An outbox message with its deliveries (all of them, or the one asked for by its <c>dlv_…</c> id).</summary>
public sealed record MessageResponse(string Id, string Type, string? CampaignId, DateTimeOffset CreatedAt, JsonElement Data,
    IReadOnlyList<DeliveryResponse> Deliveries)
{
    /// <summary>
    /// When personal data was removed from the body: after <c>Webhooks:DeliveredBodyRetentionDays</c> (<c>data</c> is
    /// then <c>{}</c>) or by erasing a participant it is about (their e-mail and name read <c>[erased]</c>). The message
    /// can then no longer be replayed (409) or recovered.
    /// </summary>
    public DateTimeOffset? DataPurgedAt { get; init; }
}

public sealed record ReplayResponse(int Replayed, IReadOnlyList<string> Deliveries);

/// <summary>The deliveries that were pending and are now <c>cancelled</c>.</summary>
public sealed record CancelResponse(int Cancelled, IReadOnlyList<string> Deliveries);

public sealed record RecoverResponse(int Recovered);
