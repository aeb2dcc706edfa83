using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Storage;

namespace Referloop.SocialProof;

public sealed record SocialProofProduct(string Name, string? Link, string? Id, string? Image, decimal? Price, int? Quantity);

/// <summary>
/// An enriched purchase or sign-up received by a <c>stream</c> hook. It holds more than the feed shows (email,
/// last name): the feed publishes only first name, last initial, city, state, country and product.
/// </summary>
public sealed class SocialProofItem
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string HookId { get; init; }
    public required string RequestId { get; init; }

    public required string Email { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }

    public string? City { get; init; }
    public string? State { get; init; }
    public string? StateCode { get; init; }
    public string? Country { get; init; }
    public string? CountryCode { get; init; }

    /// <summary>True when the location came from the GeoIP database (its licence asks for attribution).</summary>
    public bool LocatedByIp { get; init; }

    public string? Guid { get; init; }

    /// <summary>The displayed product: top-level fields, else the most expensive of <see cref="Products"/>, else the first.</summary>
    public string? ProductName { get; init; }

    public string? ProductLink { get; init; }
    public string? ProductImage { get; init; }
    public decimal? Total { get; init; }
    public string? Currency { get; init; }
    public required List<SocialProofProduct> Products { get; init; }

    public DateTimeOffset OccurredAt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

internal sealed class SocialProofItemConfiguration : IEntityTypeConfiguration<SocialProofItem>
{
    public void Configure(EntityTypeBuilder<SocialProofItem> item)
    {
        item.ToTable("social_proof_items");
        item.HasKey(i => i.Id);
        item.Property(i => i.Id).HasMaxLength(40);
        item.Property(i => i.CampaignId).HasMaxLength(40);
        item.Property(i => i.HookId).HasMaxLength(40);
        item.Property(i => i.RequestId).HasMaxLength(40);
        item.Property(i => i.Email).HasMaxLength(254);
        item.Property(i => i.FirstName).HasMaxLength(100);
        item.Property(i => i.LastName).HasMaxLength(100);
        item.Property(i => i.City).HasMaxLength(100);
        item.Property(i => i.State).HasMaxLength(100);
        item.Property(i => i.StateCode).HasMaxLength(8);
        item.Property(i => i.Country).HasMaxLength(100);
        item.Property(i => i.CountryCode).HasMaxLength(2);
        item.Property(i => i.Guid).HasMaxLength(200);
        item.Property(i => i.ProductName).HasMaxLength(200);
        item.Property(i => i.ProductLink).HasMaxLength(2048);
        item.Property(i => i.ProductImage).HasMaxLength(2048);
        item.Property(i => i.Currency).HasMaxLength(8);
        item.Property(i => i.Products).HasConversion(JsonColumn.Converter<List<SocialProofProduct>>(), JsonColumn.Comparer<List<SocialProofProduct>>());
        item.HasIndex(i => i.RequestId).IsUnique();
        item.HasIndex(i => new { i.CampaignId, i.OccurredAt });
    }
}
