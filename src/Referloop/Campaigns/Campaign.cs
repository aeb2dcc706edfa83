using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Email;
using Referloop.HostedPages;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.Campaigns;

public static class CampaignStatus
{
    public const string Active = "active";
    public const string Paused = "paused";
    public const string Archived = "archived";
    public static readonly string[] All = [Active, Paused, Archived];
}

/// <summary>What a refunded (or charged back) purchase does to the referral it qualified.</summary>
public static class RefundPolicy
{
    /// <summary>The referral is voided unless another purchase of the friend that still counts qualifies it.</summary>
    public const string KeepIfOtherPurchases = "keep_if_other_purchases";

    /// <summary>Any refunded purchase voids its referral, whatever else the friend bought.</summary>
    public const string Void = "void";

    public static readonly string[] All = [KeepIfOtherPurchases, Void];
}

public static class ApprovalPolicy
{
    public const string Auto = "auto";
    public const string Manual = "manual";
    public static readonly string[] All = [Auto, Manual];
}

/// <summary>A referral program: where share links land, how referrals are judged and what they earn.</summary>
public sealed class Campaign
{
    public required string Id { get; init; }
    public required string Name { get; set; }
    public required string LandingUrl { get; set; }
    public int AttributionWindowDays { get; set; }
    public int HoldingPeriodDays { get; set; }
    public required string Approval { get; set; }
    public bool AllowRewardsOnAutoApproved { get; set; }
    public int? GoalConversions { get; set; }

    /// <summary>A <see cref="RefundPolicy"/> value.</summary>
    public string Refunds { get; set; } = RefundPolicy.KeepIfOtherPurchases;
    public required FraudPolicy Fraud { get; set; }
    public required List<RewardRule> Rewards { get; set; }
    public required string Status { get; set; }

    /// <summary>Null until set: the server's social-proof defaults apply.</summary>
    public SocialProofSettings? SocialProof { get; set; }

    /// <summary>The name of the campaign in its join page's URL (<c>/join/{slug}</c>); the id works too.</summary>
    public string? Slug { get; set; }

    /// <summary>Null until set: the hosted pages' defaults apply.</summary>
    public PageSettings? Page { get; set; }

    /// <summary>Null until set: the default e-mail texts of the campaign's language apply.</summary>
    public EmailSettings? Email { get; set; }

    /// <summary>Safe to embed in the merchant's pages: it only lets a browser report events and read social proof.</summary>
    public required string PublishableKey { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }

    public bool IsActive => Status == CampaignStatus.Active;
}

internal sealed class CampaignConfiguration : IEntityTypeConfiguration<Campaign>
{
    public void Configure(EntityTypeBuilder<Campaign> campaign)
    {
        campaign.ToTable("campaigns");
        campaign.HasKey(c => c.Id);
        campaign.Property(c => c.Id).HasMaxLength(40);
        campaign.Property(c => c.Name).HasMaxLength(200);
        campaign.Property(c => c.LandingUrl).HasMaxLength(2048);
        campaign.Property(c => c.Approval).HasMaxLength(16);
        campaign.Property(c => c.Status).HasMaxLength(16);
        campaign.Property(c => c.Refunds).HasMaxLength(32).HasDefaultValue(RefundPolicy.KeepIfOtherPurchases);
        campaign.Property(c => c.PublishableKey).HasMaxLength(64);
        campaign.HasIndex(c => c.PublishableKey).IsUnique();
        // The rule set is read and written as a whole with its campaign, so it lives in JSON columns.
        campaign.Property(c => c.Fraud).HasConversion(JsonColumn.Converter<FraudPolicy>(), JsonColumn.Comparer<FraudPolicy>());
        campaign.Property(c => c.Rewards).HasConversion(JsonColumn.Converter<List<RewardRule>>(), JsonColumn.Comparer<List<RewardRule>>());
        campaign.Property(c => c.SocialProof).HasConversion(JsonColumn.Converter<SocialProofSettings?>(), JsonColumn.Comparer<SocialProofSettings?>());
        campaign.Property(c => c.Slug).HasMaxLength(64);
        campaign.HasIndex(c => c.Slug).IsUnique();
        campaign.Property(c => c.Page).HasConversion(JsonColumn.Converter<PageSettings?>(), JsonColumn.Comparer<PageSettings?>());
        campaign.Property(c => c.Email).HasConversion(JsonColumn.Converter<EmailSettings?>(), JsonColumn.Comparer<EmailSettings?>());
        campaign.Ignore(c => c.IsActive);
    }
}
