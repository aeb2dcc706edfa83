using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;

namespace Referloop.InboundHooks;

public static class InboundHookKind
{
    /// <summary>An event as the tracking API takes it.</summary>
    public const string Track = "track";

    /// <summary>Qualifies a referred user by their unique code.</summary>
    public const string Qualify = "qualify";

    /// <summary>A bare POST counts one conversion.</summary>
    public const string Conversion = "conversion";

    /// <summary>A purchase or sign-up for the social-proof feed.</summary>
    public const string Stream = "stream";

    public static readonly string[] All = [Track, Qualify, Conversion, Stream];
}

/// <summary>
/// A tokenised URL <c>/hooks/{token}</c> of one campaign and kind. The token is a secret: only its SHA-256 hash
/// and a short prefix are stored, and the full URL is shown once, when the hook is created.
/// </summary>
public sealed class InboundHook
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public Campaign? Campaign { get; init; }
    public required string Kind { get; init; }
    public string? Name { get; set; }

    public required string TokenHash { get; init; }

    /// <summary>The first characters of the token, so an operator can tell hooks apart in their sender's settings.</summary>
    public required string TokenPrefix { get; init; }

    /// <summary>
    /// A Standard Webhooks secret (<c>whsec_…</c>) when the sender signs its requests. Kept in clear: verifying an
    /// HMAC needs the key itself.
    /// </summary>
    public string? SigningSecret { get; set; }

    /// <summary>Bare POSTs counted by a <c>conversion</c> hook.</summary>
    public long Conversions { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? LastReceivedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

internal sealed class InboundHookConfiguration : IEntityTypeConfiguration<InboundHook>
{
    public void Configure(EntityTypeBuilder<InboundHook> hook)
    {
        hook.ToTable("inbound_hooks");
        hook.HasKey(h => h.Id);
        hook.Property(h => h.Id).HasMaxLength(40);
        hook.Property(h => h.CampaignId).HasMaxLength(40);
        hook.Property(h => h.Kind).HasMaxLength(16);
        hook.Property(h => h.Name).HasMaxLength(200);
        hook.Property(h => h.TokenHash).HasMaxLength(64);
        hook.Property(h => h.TokenPrefix).HasMaxLength(16);
        hook.Property(h => h.SigningSecret).HasMaxLength(200);
        hook.HasOne(h => h.Campaign).WithMany().HasForeignKey(h => h.CampaignId).OnDelete(DeleteBehavior.Restrict);
        hook.HasIndex(h => h.TokenHash).IsUnique();
        hook.HasIndex(h => h.CampaignId);
    }
}
