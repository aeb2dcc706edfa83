using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Webhooks;

public static class DeliveryStatus
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    /// <summary>
    /// Stopped before a 2xx, and never retried on its own: by a person (<c>POST /api/v1/messages/{id}/cancel</c>) or by
    /// the erasure of the participant the message is about. An attempt still on the wire is dropped, its answer and
    /// log unrecorded. A replay sends it again like a failed one, unless the message's body was purged
    /// (<see cref="OutboxMessage.DataPurgedAt"/>: by an erasure or after its retention), which is a 409.
    /// </summary>
    public const string Cancelled = "cancelled";

    public static readonly string[] All = [Pending, Succeeded, Failed, Cancelled];
}

/// <summary>
/// One outbox message for one endpoint (the "message" of the delivery log). It keeps the outbox id as its
/// <c>webhook-id</c>, so every retry and replay of it carries the same id and receivers can de-duplicate.
/// </summary>
public sealed class WebhookDelivery
{
    /// <summary><c>dlv_…</c>: one outbox message fans out to many endpoints, so deliveries need their own id.</summary>
    public required string Id { get; init; }

    /// <summary>The outbox message id: the <c>webhook-id</c> header.</summary>
    public required string MessageId { get; init; }
    public OutboxMessage? Message { get; init; }

    public required string EndpointId { get; init; }
    public WebhookEndpoint? Endpoint { get; init; }

    public required string Status { get; set; }

    /// <summary>Every attempt ever made, across replays; numbers the attempt log.</summary>
    public int Attempts { get; set; }

    /// <summary>Attempts in the current round of the retry schedule; a replay starts a new round.</summary>
    public int Round { get; set; }

    public DateTimeOffset NextAttemptAt { get; set; }

    /// <summary>The instance that holds this delivery, until <see cref="ClaimedUntil"/>; a dead instance's claim expires.</summary>
    public string? ClaimedBy { get; set; }
    public DateTimeOffset? ClaimedUntil { get; set; }

    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }

    /// <summary>Sent with "send test message": never releases rewards.</summary>
    public bool IsTest { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }

    public List<WebhookAttempt> AttemptLog { get; init; } = [];
}

/// <summary>One HTTP try of a delivery, as it happened.</summary>
public sealed class WebhookAttempt
{
    public required string Id { get; init; }
    public required string DeliveryId { get; init; }
    public required string EndpointId { get; init; }
    public int Number { get; init; }

    /// <summary>Sent as <c>X-Request-Id</c>, so both sides can find the same request in their logs.</summary>
    public required string RequestId { get; init; }

    public required string Method { get; init; }
    public required string Url { get; init; }
    public int? StatusCode { get; init; }
    public long LatencyMs { get; init; }

    /// <summary>The first 4 KiB of the response body at most.</summary>
    public string? ResponseExcerpt { get; init; }

    public string? Error { get; init; }
    public DateTimeOffset AttemptedAt { get; init; }

    /// <summary>
    /// The request headers as sent, a compact JSON object, with the endpoint's custom headers and credentials shown as
    /// <c>[redacted]</c> (<see cref="SentHeaders"/>). Null for attempts logged before headers were kept.
    /// </summary>
    public string? RequestHeaders { get; init; }
}

internal sealed class WebhookDeliveryConfiguration : IEntityTypeConfiguration<WebhookDelivery>
{
    public void Configure(EntityTypeBuilder<WebhookDelivery> delivery)
    {
        delivery.ToTable("webhook_deliveries");
        delivery.HasKey(d => d.Id);
        delivery.Property(d => d.Id).HasMaxLength(40);
        delivery.Property(d => d.MessageId).HasMaxLength(40);
        delivery.Property(d => d.EndpointId).HasMaxLength(40);
        delivery.Property(d => d.Status).HasMaxLength(16);
        delivery.Property(d => d.ClaimedBy).HasMaxLength(100);
        delivery.Property(d => d.LastError).HasMaxLength(1000);
        delivery.HasOne(d => d.Message).WithMany().HasForeignKey(d => d.MessageId).OnDelete(DeleteBehavior.Cascade);
        delivery.HasOne(d => d.Endpoint).WithMany().HasForeignKey(d => d.EndpointId).OnDelete(DeleteBehavior.Cascade);
        delivery.HasMany(d => d.AttemptLog).WithOne().HasForeignKey(a => a.DeliveryId).OnDelete(DeleteBehavior.Cascade);
        // A message reaches an endpoint through exactly one delivery, even if two dispatchers race.
        delivery.HasIndex(d => new { d.MessageId, d.EndpointId }).IsUnique();
        delivery.HasIndex(d => new { d.EndpointId, d.Id });
        delivery.HasIndex(d => new { d.EndpointId, d.Status, d.CreatedAt });
        // The claim reads each endpoint's due deliveries on their own, oldest first; only pending ones, so the index
        // stays as small as the backlog however long the log grows.
        delivery.HasIndex(d => new { d.EndpointId, d.NextAttemptAt }).HasDatabaseName("IX_webhook_deliveries_due")
            .HasFilter("\"Status\" = 'pending'");
    }
}

internal sealed class WebhookAttemptConfiguration : IEntityTypeConfiguration<WebhookAttempt>
{
    public void Configure(EntityTypeBuilder<WebhookAttempt> attempt)
    {
        attempt.ToTable("webhook_attempts");
        attempt.HasKey(a => a.Id);
        attempt.Property(a => a.Id).HasMaxLength(40);
        attempt.Property(a => a.DeliveryId).HasMaxLength(40);
        attempt.Property(a => a.EndpointId).HasMaxLength(40);
        attempt.Property(a => a.RequestId).HasMaxLength(40);
        attempt.Property(a => a.Method).HasMaxLength(8);
        attempt.Property(a => a.Url).HasMaxLength(4096);
        attempt.Property(a => a.Error).HasMaxLength(1000);
        attempt.Property(a => a.RequestHeaders).HasMaxLength(8192);
        attempt.HasIndex(a => new { a.DeliveryId, a.Number });
    }
}
