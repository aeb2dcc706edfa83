using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;
using Referloop.Storage;

namespace Referloop.Participants;

public static class ParticipantRole
{
    public const string Referrer = "referrer";
    public const string Invited = "invited";
}

/// <summary>A person in one campaign, known by normalised email; a referrer shares <see cref="Code"/>.</summary>
public sealed class Participant
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public Campaign? Campaign { get; init; }

    /// <summary>Trimmed and lower-cased: the identity within the campaign.</summary>
    public required string Email { get; init; }

    public string? Name { get; set; }
    public string? CustomValue { get; set; }

    /// <summary>The share code: unique across all campaigns, unguessable, URL-safe.</summary>
    public required string Code { get; init; }

    public bool IsReferrer { get; set; }
    public bool IsInvited { get; set; }

    /// <summary>The advocate who brought this participant in, when there was one.</summary>
    public string? ReferredById { get; set; }

    /// <summary>
    /// When <see cref="ReferredById"/> was set: the sign-up of a new friend, or the day a participant added before was
    /// referred. The velocity check counts an advocate's friends by it.
    /// </summary>
    public DateTimeOffset? ReferredAt { get; set; }

    /// <summary>
    /// <see cref="RiskLevel"/> derived from the fraud decisions about the referrals this participant brought as an
    /// advocate (<see cref="ParticipantRisk"/>).
    /// </summary>
    public string RiskLevel { get; set; } = Participants.RiskLevel.Low;

    /// <summary>Why the level is what it is, one line per counted referral; null while nothing counts.</summary>
    public List<string>? RiskReasons { get; set; }

    public DateTimeOffset? RiskChangedAt { get; set; }

    /// <summary>
    /// SHA-256 of the token of the advocate's portal link (<c>/p/{token}</c>); null when none is issued or it was
    /// revoked. The token itself is shown once, when it is issued.
    /// </summary>
    public string? PortalTokenHash { get; set; }

    /// <summary>
    /// SHA-256 of the portal token of the last e-mail that carried a portal link; opens the same portal as
    /// <see cref="PortalTokenHash"/>, and is replaced by the next such mail.
    /// </summary>
    public string? MailPortalTokenHash { get; set; }

    /// <summary>When the participant unsubscribed from notification e-mails; they still get a magic link they ask for.</summary>
    public DateTimeOffset? EmailOptedOutAt { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }

    public IReadOnlyList<string> Roles =>
        (IsReferrer, IsInvited) switch
        {
            (true, true) => [ParticipantRole.Referrer, ParticipantRole.Invited],
            (false, true) => [ParticipantRole.Invited],
            _ => [ParticipantRole.Referrer],
        };

    public static string NormaliseEmail(string email) => email.Trim().ToLowerInvariant();
}

internal sealed class ParticipantConfiguration : IEntityTypeConfiguration<Participant>
{
    public void Configure(EntityTypeBuilder<Participant> participant)
    {
        participant.ToTable("participants");
        participant.HasKey(p => p.Id);
        participant.Property(p => p.Id).HasMaxLength(40);
        participant.Property(p => p.CampaignId).HasMaxLength(40);
        participant.Property(p => p.Email).HasMaxLength(254);
        participant.Property(p => p.Name).HasMaxLength(200);
        participant.Property(p => p.CustomValue).HasMaxLength(500);
        participant.Property(p => p.Code).HasMaxLength(32);
        participant.Property(p => p.ReferredById).HasMaxLength(40);
        participant.HasOne(p => p.Campaign).WithMany().HasForeignKey(p => p.CampaignId).OnDelete(DeleteBehavior.Restrict);
        participant.HasIndex(p => new { p.CampaignId, p.Email }).IsUnique();
        participant.HasIndex(p => p.Code).IsUnique();
        // The velocity check counts an advocate's friends of the last hour.
        participant.HasIndex(p => new { p.ReferredById, p.ReferredAt });
        participant.Ignore(p => p.Roles);
        participant.Property(p => p.PortalTokenHash).HasMaxLength(64);
        // Only advocates with a portal link hold these: partial indexes cost every friend nothing.
        participant.HasIndex(p => p.PortalTokenHash).IsUnique().HasFilter("\"PortalTokenHash\" IS NOT NULL");
        participant.Property(p => p.MailPortalTokenHash).HasMaxLength(64);
        participant.HasIndex(p => p.MailPortalTokenHash).IsUnique().HasFilter("\"MailPortalTokenHash\" IS NOT NULL");
        participant.Property(p => p.RiskLevel).HasMaxLength(8).HasDefaultValue(RiskLevel.Low);
        participant.Property(p => p.RiskReasons).HasConversion(JsonColumn.Converter<List<string>?>(), JsonColumn.Comparer<List<string>?>());
    }
}
