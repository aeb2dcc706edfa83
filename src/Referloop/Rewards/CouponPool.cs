using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;

namespace Referloop.Rewards;

/// <summary>
/// Named codes of one campaign (<c>welcome10</c>) that <c>discount_coupon</c> rewards draw from. When it runs dry,
/// codes are asked for at <see cref="CreateCouponUrl"/>, signed with <see cref="Secret"/> like outbound webhooks.
/// </summary>
public sealed class CouponPool
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }

    /// <summary>The name reward rules use in <c>incentive.pool</c>: 1–64 letters, digits, '_' or '-'.</summary>
    public required string Name { get; init; }

    public string? CreateCouponUrl { get; set; }

    /// <summary><c>whsec_…</c>; kept readable because signing needs it.</summary>
    public required string Secret { get; set; }

    /// <summary>During a rotation the old secret still signs too, until <see cref="PreviousSecretExpiresAt"/>.</summary>
    public string? PreviousSecret { get; set; }
    public DateTimeOffset? PreviousSecretExpiresAt { get; set; }

    /// <summary>The secrets that sign a create-coupon call now: the current one, and the previous one during an overlap.</summary>
    public static IEnumerable<string> SigningSecrets(string secret, string? previousSecret, DateTimeOffset? previousExpiresAt,
        DateTimeOffset now)
    {
        yield return secret;
        if (previousSecret is not null && previousExpiresAt > now)
        {
            yield return previousSecret;
        }
    }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public static class CouponSource
{
    public const string Upload = "upload";
    public const string CreateCouponUrl = "createCouponUrl";
}

/// <summary>One code of a pool; it is free until a reward claims it, and it is never handed out twice.</summary>
public sealed class Coupon
{
    public required string Id { get; init; }
    public required string PoolId { get; init; }
    public required string Code { get; init; }

    /// <summary>Where the code came from: <see cref="CouponSource"/>.</summary>
    public required string Source { get; init; }

    public string? AllocatedToRewardId { get; init; }
    public string? AllocatedToParticipantId { get; init; }
    public DateTimeOffset? AllocatedAt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

internal sealed class CouponPoolConfiguration : IEntityTypeConfiguration<CouponPool>
{
    public void Configure(EntityTypeBuilder<CouponPool> pool)
    {
        pool.ToTable("coupon_pools");
        pool.HasKey(p => p.Id);
        pool.Property(p => p.Id).HasMaxLength(40);
        pool.Property(p => p.CampaignId).HasMaxLength(40);
        pool.Property(p => p.Name).HasMaxLength(64);
        pool.Property(p => p.CreateCouponUrl).HasMaxLength(2048);
        pool.Property(p => p.Secret).HasMaxLength(100);
        pool.Property(p => p.PreviousSecret).HasMaxLength(100);
        pool.HasOne<Campaign>().WithMany().HasForeignKey(p => p.CampaignId).OnDelete(DeleteBehavior.Restrict);
        pool.HasIndex(p => new { p.CampaignId, p.Name }).IsUnique();
    }
}

internal sealed class CouponConfiguration : IEntityTypeConfiguration<Coupon>
{
    public void Configure(EntityTypeBuilder<Coupon> coupon)
    {
        coupon.ToTable("coupons");
        coupon.HasKey(c => c.Id);
        coupon.Property(c => c.Id).HasMaxLength(40);
        coupon.Property(c => c.PoolId).HasMaxLength(40);
        coupon.Property(c => c.Code).HasMaxLength(100);
        coupon.Property(c => c.Source).HasMaxLength(20);
        coupon.Property(c => c.AllocatedToRewardId).HasMaxLength(64);
        coupon.Property(c => c.AllocatedToParticipantId).HasMaxLength(40);
        coupon.HasOne<CouponPool>().WithMany().HasForeignKey(c => c.PoolId).OnDelete(DeleteBehavior.Cascade);
        coupon.HasIndex(c => new { c.PoolId, c.Code }).IsUnique();
        // One code per reward, whatever races: a second claim for the same reward fails here and reads the first.
        coupon.HasIndex(c => c.AllocatedToRewardId).IsUnique();
        // "The first free code of this pool" and the stock counts read this index.
        coupon.HasIndex(c => new { c.PoolId, c.AllocatedToRewardId, c.Id });
        // Coupon cycling: the codes handed to one advocate.
        coupon.HasIndex(c => c.AllocatedToParticipantId);
    }
}
