using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Referrals;

public static class ReferralStatus
{
    public const string Pending = "pending";
    public const string Qualified = "qualified";
    public const string Approved = "approved";
    public const string Voided = "voided";

    /// <summary>A fraud check set to <c>flag</c> tripped: the referral waits for review, its rewards held.</summary>
    public const string Flagged = "flagged";

    public static readonly string[] All = [Pending, Qualified, Approved, Voided, Flagged];
}

/// <summary>One fraud check that tripped when the referral was judged, kept so the decision can be explained.</summary>
public sealed record ScreeningFinding(string Check, string Action, string Reason);

/// <summary>Advocate → friend, created by the friend's first attributed event; one per friend.</summary>
public sealed class Referral
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string AdvocateId { get; init; }
    public Participant? Advocate { get; init; }
    public required string FriendId { get; init; }
    public Participant? Friend { get; init; }

    public required string Status { get; set; }

    /// <summary>Why the referral is in its current status (the last change's reason).</summary>
    public string? Reason { get; set; }

    /// <summary>How the friend was attributed: <c>referral_code</c>, <c>click_id</c>, <c>email</c>, <c>ip</c> or <c>api</c>.</summary>
    public required string AttributedBy { get; init; }

    public string? ClickId { get; init; }

    /// <summary>Approved by the campaign's auto policy rather than by a person.</summary>
    public bool AutoApproved { get; set; }

    /// <summary>When the auto-approval service approves a qualified referral (end of the holding period).</summary>
    public DateTimeOffset? ApproveAfter { get; set; }

    /// <summary>
    /// Rewards tied to the approval become payable (issued) at this moment: when the <c>referral.approved</c>
    /// webhook was acknowledged with a 2xx, or at approval when no endpoint listens for it.
    /// </summary>
    public DateTimeOffset? RewardsReleasedAt { get; set; }

    /// <summary>This referral was the advocate's Nth conversion (set when it qualified).</summary>
    public int? ConversionNumber { get; set; }

    public List<ScreeningFinding> Findings { get; set; } = [];

    /// <summary>0–100 from the weighted checks in <see cref="Findings"/> (<see cref="Fraud.RiskScore"/>); 0 when clean.</summary>
    public int RiskScore { get; set; }

    /// <summary>
    /// <see cref="Fraud.FraudDecision"/>: passed, flagged, blocked, or the review's cleared / rejected; null for
    /// referrals screened before decisions were recorded.
    /// </summary>
    public string? FraudDecision { get; set; }

    /// <summary>When the referral entered the review queue; kept after the review, so the queue's order is stable.</summary>
    public DateTimeOffset? FlaggedAt { get; set; }

    // The event that last moved the referral, reported in its outbound events.
    public string? EventType { get; set; }
    public string? OrderId { get; set; }
    public decimal? PurchaseValue { get; set; }
    public string? Currency { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? QualifiedAt { get; set; }
    public DateTimeOffset? ApprovedAt { get; set; }
    public DateTimeOffset? VoidedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>
    /// Every status change, oldest first. Kept in the referral's own row (a JSON column) rather than a table of its
    /// own: it is only ever read with its referral, and a referral created and approved by one purchase then costs
    /// one row, not four.
    /// </summary>
    public List<ReferralStatusChange> History { get; set; } = [];
}

/// <summary>One status change of a referral: from, to, why and when.</summary>
public sealed record ReferralStatusChange(string? From, string To, string Reason, DateTimeOffset At);

internal sealed class ReferralConfiguration : IEntityTypeConfiguration<Referral>
{
    public void Configure(EntityTypeBuilder<Referral> referral)
    {
        referral.ToTable("referrals");
        referral.HasKey(r => r.Id);
        referral.Property(r => r.Id).HasMaxLength(40);
        referral.Property(r => r.CampaignId).HasMaxLength(40);
        referral.Property(r => r.AdvocateId).HasMaxLength(40);
        referral.Property(r => r.FriendId).HasMaxLength(40);
        referral.Property(r => r.Status).HasMaxLength(16);
        referral.Property(r => r.Reason).HasMaxLength(1000);
        referral.Property(r => r.AttributedBy).HasMaxLength(16);
        referral.Property(r => r.ClickId).HasMaxLength(40);
        referral.Property(r => r.EventType).HasMaxLength(64);
        referral.Property(r => r.OrderId).HasMaxLength(200);
        referral.Property(r => r.Currency).HasMaxLength(3);
        referral.Property(r => r.FraudDecision).HasMaxLength(16);
        referral.Property(r => r.Findings).HasConversion(JsonColumn.Converter<List<ScreeningFinding>>(), JsonColumn.Comparer<List<ScreeningFinding>>());
        referral.Property(r => r.History).HasConversion(JsonColumn.Converter<List<ReferralStatusChange>>(), JsonColumn.Comparer<List<ReferralStatusChange>>());
        referral.HasOne(r => r.Advocate).WithMany().HasForeignKey(r => r.AdvocateId).OnDelete(DeleteBehavior.Restrict);
        referral.HasOne(r => r.Friend).WithMany().HasForeignKey(r => r.FriendId).OnDelete(DeleteBehavior.Restrict);
        // A friend is referred once: the first attribution wins, later events join that referral.
        referral.HasIndex(r => r.FriendId).IsUnique();
        referral.HasIndex(r => new { r.AdvocateId, r.Id });
        referral.HasIndex(r => new { r.CampaignId, r.Status, r.Id });
        // The auto-approval service reads the due ones; only referrals in a holding period hold an approval time.
        referral.HasIndex(r => new { r.Status, r.ApproveAfter }).HasFilter("\"ApproveAfter\" IS NOT NULL");
        // The review queue: flagged referrals, oldest first, paged by (FlaggedAt, Id).
        referral.HasIndex(r => new { r.Status, r.FlaggedAt, r.Id });
    }
}
