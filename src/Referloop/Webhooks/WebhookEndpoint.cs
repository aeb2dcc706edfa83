using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Storage;

namespace Referloop.Webhooks;

public static class WebhookFormat
{
    /// <summary>POST, <c>application/json</c>, envelope <c>{"type","timestamp","message","data"}</c>.</summary>
    public const string Json = "json";

    /// <summary>POST, <c>application/x-www-form-urlencoded</c>, flat snake_case fields.</summary>
    public const string Form = "form";

    /// <summary>GET with query parameters; <c>conversion</c> keeps its historical parameter names.</summary>
    public const string Query = "query";

    public static readonly string[] All = [Json, Form, Query];
}

/// <summary>A receiver of outbound events: where, which events, in what shape, signed with which secret.</summary>
public sealed class WebhookEndpoint
{
    public required string Id { get; init; }
    public required string Url { get; set; }
    public string? Description { get; set; }

    /// <summary>
    /// The scheme, host and port of <paramref name="url"/>: what is shown where its path and query, which often hold the
    /// receiver's secret (a chat or automation hook's token), must not be: in the messages other endpoints receive, and
    /// to a key other than a full-scope one.
    /// </summary>
    public static string Origin(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped) : "";

    /// <summary>Empty means every event type.</summary>
    public List<string> EventTypes { get; set; } = [];

    /// <summary>Null means every campaign.</summary>
    public string? CampaignId { get; set; }

    public required string Format { get; set; }
    public bool Enabled { get; set; } = true;
    public string? DisabledReason { get; set; }
    public DateTimeOffset? DisabledAt { get; set; }

    /// <summary>Requests per second at most; null means no limit beyond the concurrency bound.</summary>
    public int? RateLimitPerSecond { get; set; }

    public Dictionary<string, string> Headers { get; set; } = [];

    /// <summary><see cref="WebhookSigning.Hmac"/> (<c>v1</c>) or <see cref="WebhookSigning.Ed25519"/> (<c>v1a</c>); fixed at creation.</summary>
    public string Signing { get; set; } = WebhookSigning.Hmac;

    /// <summary>Kept in clear: it is needed to sign every message. Empty for an Ed25519 endpoint, which has no shared secret.</summary>
    public required string Secret { get; set; }

    /// <summary>During a rotation the old secret (or key pair) still signs too, until <see cref="PreviousSecretExpiresAt"/>.</summary>
    public string? PreviousSecret { get; set; }
    public DateTimeOffset? PreviousSecretExpiresAt { get; set; }

    /// <summary>Ed25519 only: <c>whpk_…</c>, what receivers verify with.</summary>
    public string? PublicKey { get; set; }

    /// <summary>Ed25519 only: the private key, encrypted with Data Protection (see <see cref="WebhookKeys"/>).</summary>
    public string? PrivateKey { get; set; }

    public string? PreviousPublicKey { get; set; }
    public string? PreviousPrivateKey { get; set; }

    /// <summary>
    /// seeds/002: a <c>referral.approved</c> message, whose rewards wait for its 2xx, is not failed when the retry
    /// schedule runs out but tried again on its last interval (10 h) until a 2xx, or until a person cancels it; nor is
    /// the endpoint disabled for failing, which would end that wait. On by default for an endpoint that receives
    /// <c>referral.approved</c>.
    /// </summary>
    public bool RetryUntilAcknowledged { get; set; }

    /// <summary>Start of the current unbroken run of failed attempts; cleared by any 2xx.</summary>
    public DateTimeOffset? FailingSince { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }

    public IEnumerable<string> SigningSecrets(DateTimeOffset now)
    {
        yield return Secret;
        if (PreviousSecret is not null && PreviousSecretExpiresAt > now)
        {
            yield return PreviousSecret;
        }
    }

    public IEnumerable<string> SigningKeys(DateTimeOffset now)
    {
        if (PrivateKey is not null)
        {
            yield return PrivateKey;
        }
        if (PreviousPrivateKey is not null && PreviousSecretExpiresAt > now)
        {
            yield return PreviousPrivateKey;
        }
    }

    public bool Wants(OutboxMessage message) =>
        // An operational event about an endpoint never goes to that endpoint: it may be the one that cannot receive.
        message.EndpointId != Id
        && Subscribes(message.Type, message.CampaignId)
        // An endpoint created after a message was written does not receive it.
        && CreatedAt <= message.CreatedAt;

    /// <summary>Whether a (non-test) message of this type keeps being retried after the schedule has run out.</summary>
    public bool RetriesUntilAcknowledged(string messageType) =>
        RetryUntilAcknowledged && messageType == Webhooks.EventTypes.ReferralApproved;

    /// <summary>The default of <see cref="RetryUntilAcknowledged"/>: on when the filter lets <c>referral.approved</c> through.</summary>
    public static bool ReceivesApprovals(IReadOnlyCollection<string>? eventTypes) =>
        eventTypes is null || eventTypes.Count == 0 || eventTypes.Contains(Webhooks.EventTypes.ReferralApproved);

    /// <summary>Its event-type filter (empty: every type) and campaign (none: every campaign) take this kind of event.</summary>
    public bool Subscribes(string type, string? campaignId) =>
        (EventTypes.Count == 0 || EventTypes.Contains(type))
        && (CampaignId is null || CampaignId == campaignId);
}

/// <summary>
/// The enabled endpoints, as the unit of work in progress sees them: read once per transaction and shared by whoever
/// asks inside it (an approval asking whether anyone listens, then its save fanning its messages out), so an event
/// reads them once. Outside a transaction, read on every call. A transaction that enabled or created an endpoint
/// after reading the list would not see it; none does.
/// </summary>
internal static class EnabledEndpoints
{
    private static readonly Func<ReferloopDb, IAsyncEnumerable<WebhookEndpoint>> Query =
        EF.CompileAsyncQuery((ReferloopDb db) => db.WebhookEndpoints.AsNoTracking().Where(e => e.Enabled));

    // By context and EF's id of the transaction: providers reuse their transaction objects (Npgsql does), so neither
    // the object nor the pooled context alone tells one transaction from the next.
    private static readonly ConditionalWeakTable<DbContext, Read> PerTransaction = [];

    private sealed record Read(Guid TransactionId, List<WebhookEndpoint> Endpoints);

    public static async Task<List<WebhookEndpoint>> ReadAsync(ReferloopDb db, CancellationToken ct)
    {
        var transactionId = db.Database.CurrentTransaction?.TransactionId;
        if (transactionId is not null && PerTransaction.TryGetValue(db, out var read) && read.TransactionId == transactionId)
        {
            return read.Endpoints;
        }
        var endpoints = new List<WebhookEndpoint>();
        await foreach (var endpoint in Query(db).WithCancellation(ct))
        {
            endpoints.Add(endpoint);
        }
        if (transactionId is { } id)
        {
            PerTransaction.AddOrUpdate(db, new Read(id, endpoints));
        }
        return endpoints;
    }
}

internal sealed class WebhookEndpointConfiguration : IEntityTypeConfiguration<WebhookEndpoint>
{
    public void Configure(EntityTypeBuilder<WebhookEndpoint> endpoint)
    {
        endpoint.ToTable("webhook_endpoints");
        endpoint.HasKey(e => e.Id);
        endpoint.Property(e => e.Id).HasMaxLength(40);
        endpoint.Property(e => e.Url).HasMaxLength(2048);
        endpoint.Property(e => e.Description).HasMaxLength(500);
        endpoint.Property(e => e.CampaignId).HasMaxLength(40);
        endpoint.Property(e => e.Format).HasMaxLength(16);
        endpoint.Property(e => e.DisabledReason).HasMaxLength(500);
        endpoint.Property(e => e.Secret).HasMaxLength(128);
        endpoint.Property(e => e.PreviousSecret).HasMaxLength(128);
        endpoint.Property(e => e.Signing).HasMaxLength(16).HasDefaultValue(WebhookSigning.Hmac);
        endpoint.Property(e => e.PublicKey).HasMaxLength(64);
        endpoint.Property(e => e.PreviousPublicKey).HasMaxLength(64);
        endpoint.Property(e => e.PrivateKey).HasMaxLength(1024);
        endpoint.Property(e => e.PreviousPrivateKey).HasMaxLength(1024);
        endpoint.Property(e => e.EventTypes)
            .HasConversion(JsonColumn.Converter<List<string>>(), JsonColumn.Comparer<List<string>>());
        endpoint.Property(e => e.Headers)
            .HasConversion(JsonColumn.Converter<Dictionary<string, string>>(), JsonColumn.Comparer<Dictionary<string, string>>());
    }
}
