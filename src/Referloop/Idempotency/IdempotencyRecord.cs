using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Idempotency;

/// <summary>
/// One <c>Idempotency-Key</c> of one caller: the request it was first used with (a SHA-256 of method, path, query and
/// body) and, once answered, that answer. Kept for <c>Idempotency:RetentionHours</c> (24) from first use.
/// </summary>
public sealed class IdempotencyRecord
{
    /// <summary><c>key:apk_…</c> for an admin key, <c>campaign:cmp_…</c> for a browser's publishable key.</summary>
    public required string Scope { get; init; }

    public required string Key { get; init; }
    public required string RequestHash { get; init; }
    public required string Method { get; init; }
    public required string Path { get; init; }

    /// <summary>The route answers retries itself (<c>POST /api/v1/events</c>): only the request hash is checked here.</summary>
    public bool AnsweredByRoute { get; init; }

    /// <summary>Null while the first request is being processed.</summary>
    public int? StatusCode { get; set; }

    public string? ContentType { get; set; }
    public string? Location { get; set; }

    /// <summary>The answer's body, encrypted with Data Protection: some answers show a secret once (a new API key, a webhook secret).</summary>
    public string? ResponseBody { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
}

internal sealed class IdempotencyRecordConfiguration : IEntityTypeConfiguration<IdempotencyRecord>
{
    public void Configure(EntityTypeBuilder<IdempotencyRecord> record)
    {
        record.ToTable("idempotency_keys");
        record.HasKey(r => new { r.Scope, r.Key });
        record.Property(r => r.Scope).HasMaxLength(60);
        record.Property(r => r.Key).HasMaxLength(200);
        record.Property(r => r.RequestHash).HasMaxLength(64);
        record.Property(r => r.Method).HasMaxLength(10);
        record.Property(r => r.Path).HasMaxLength(500);
        record.Property(r => r.ContentType).HasMaxLength(200);
        record.Property(r => r.Location).HasMaxLength(2048);
        record.HasIndex(r => r.CreatedAt);
    }
}
