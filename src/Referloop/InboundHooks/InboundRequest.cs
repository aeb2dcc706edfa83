using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.InboundHooks;

public static class InboundOutcomeStatus
{
    /// <summary>Stored, not yet processed: a request left in this state was interrupted and can be inspected.</summary>
    public const string Received = "received";

    public const string Processed = "processed";

    /// <summary>The same idempotency key was processed before; the earlier result is answered again.</summary>
    public const string Duplicate = "duplicate";

    /// <summary>The request was refused (bad body, bad signature, missing field…); see the reason.</summary>
    public const string Rejected = "rejected";

    /// <summary>Processing broke on our side; the raw request is kept.</summary>
    public const string Failed = "failed";
}

/// <summary>
/// One request to <c>/hooks/{token}</c>, written raw before it is processed, so a processing error never loses it,
/// then updated with its outcome.
/// </summary>
public sealed class InboundRequest
{
    public required string Id { get; init; }
    public required string HookId { get; init; }
    public required string CampaignId { get; init; }
    public DateTimeOffset ReceivedAt { get; init; }
    public string? ContentType { get; init; }

    /// <summary>A subset of the request headers (content, signature, idempotency, client), as a JSON object.</summary>
    public required string Headers { get; init; }

    /// <summary>The body as text; null when it was refused for its size.</summary>
    public string? Body { get; init; }

    public int BodyBytes { get; init; }
    public string? RemoteIp { get; init; }

    /// <summary>From <c>Idempotency-Key</c>, else <c>webhook-id</c>.</summary>
    public string? IdempotencyKey { get; init; }

    public required string Outcome { get; set; }
    public string? Reason { get; set; }

    /// <summary>What processing produced (JSON), answered again to a duplicate.</summary>
    public string? Result { get; set; }

    /// <summary>
    /// Set to the idempotency key once processed; unique per hook, so two concurrent deliveries of one message
    /// cannot both be processed.
    /// </summary>
    public string? ProcessedKey { get; set; }

    public DateTimeOffset? ProcessedAt { get; set; }
}

internal sealed class InboundRequestConfiguration : IEntityTypeConfiguration<InboundRequest>
{
    public void Configure(EntityTypeBuilder<InboundRequest> request)
    {
        request.ToTable("inbound_requests");
        request.HasKey(r => r.Id);
        request.Property(r => r.Id).HasMaxLength(40);
        request.Property(r => r.HookId).HasMaxLength(40);
        request.Property(r => r.CampaignId).HasMaxLength(40);
        request.Property(r => r.ContentType).HasMaxLength(200);
        request.Property(r => r.RemoteIp).HasMaxLength(64);
        request.Property(r => r.IdempotencyKey).HasMaxLength(200);
        request.Property(r => r.ProcessedKey).HasMaxLength(200);
        request.Property(r => r.Outcome).HasMaxLength(16);
        request.Property(r => r.Reason).HasMaxLength(2000);
        request.HasOne<InboundHook>().WithMany().HasForeignKey(r => r.HookId).OnDelete(DeleteBehavior.Restrict);
        request.HasIndex(r => new { r.HookId, r.Id });
        request.HasIndex(r => new { r.HookId, r.ProcessedKey }).IsUnique();
        request.HasIndex(r => new { r.HookId, r.IdempotencyKey });
        request.HasIndex(r => new { r.CampaignId, r.ReceivedAt });
    }
}
