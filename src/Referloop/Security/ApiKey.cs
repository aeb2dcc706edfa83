using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Security;

/// <summary>An admin API key. Only its SHA-256 hash is stored; the key itself is shown once, when created.</summary>
public sealed class ApiKey
{
    public required string Id { get; init; }
    public required string Name { get; set; }

    /// <summary>The first characters of the key, so an operator can tell keys apart.</summary>
    public required string Prefix { get; init; }

    public required string Hash { get; init; }

    /// <summary>An <see cref="ApiKeyScope"/>; keys made before scopes existed, and the first key, are <c>full</c>.</summary>
    public string Scope { get; init; } = ApiKeyScope.Full;

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? RevokedAt { get; set; }
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> key)
    {
        key.ToTable("api_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(40);
        key.Property(k => k.Name).HasMaxLength(100);
        key.Property(k => k.Prefix).HasMaxLength(16);
        key.Property(k => k.Hash).HasMaxLength(64);
        key.Property(k => k.Scope).HasMaxLength(16).HasDefaultValue(ApiKeyScope.Full);
        key.HasIndex(k => k.Hash).IsUnique();
    }
}
