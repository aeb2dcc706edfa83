using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Email;

public static class EmailStatus
{
    /// <summary>Waiting for its (next) attempt at <see cref="EmailSend.NextAttemptAt"/>.</summary>
    public const string Pending = "pending";

    /// <summary>The SMTP server accepted it.</summary>
    public const string Sent = "sent";

    /// <summary>Refused for good (a 5xx answer) or every attempt failed; <see cref="EmailSend.LastError"/> says why.</summary>
    public const string Failed = "failed";

    /// <summary>Not sent: the participant unsubscribed, was erased, or the reward was taken back before it went out.</summary>
    public const string Skipped = "skipped";

    public static readonly string[] All = [Pending, Sent, Failed, Skipped];
}

/// <summary>
/// One e-mail to one participant and what became of it. Written in the transaction that decides it is due (the
/// outbox fan-out, or the magic-link form), sent later by <see cref="EmailSender"/> outside any transaction.
/// </summary>
public sealed class EmailSend
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string ParticipantId { get; init; }

    /// <summary>An <see cref="EmailKind"/> value.</summary>
    public required string Kind { get; init; }

    /// <summary>The outbox message it answers, for notifications.</summary>
    public string? MessageId { get; init; }

    /// <summary>The reward it announces (reward and milestone mails).</summary>
    public string? RewardId { get; init; }

    public required string To { get; set; }

    /// <summary>Set when the mail is composed, at its first attempt.</summary>
    public string? Subject { get; set; }

    public required string Status { get; set; }
    public int Attempts { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }

    /// <summary>The instance sending it holds it until then; a dead instance's sends are taken over after.</summary>
    public string? ClaimedBy { get; set; }
    public DateTimeOffset? ClaimedUntil { get; set; }

    public DateTimeOffset? SentAt { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class EmailSendConfiguration : IEntityTypeConfiguration<EmailSend>
{
    public void Configure(EntityTypeBuilder<EmailSend> send)
    {
        send.ToTable("email_sends");
        send.HasKey(s => s.Id);
        send.Property(s => s.Id).HasMaxLength(40);
        send.Property(s => s.CampaignId).HasMaxLength(40);
        send.Property(s => s.ParticipantId).HasMaxLength(40);
        send.Property(s => s.Kind).HasMaxLength(16);
        send.Property(s => s.MessageId).HasMaxLength(40);
        send.Property(s => s.RewardId).HasMaxLength(40);
        send.Property(s => s.To).HasMaxLength(254);
        send.Property(s => s.Subject).HasMaxLength(300);
        send.Property(s => s.Status).HasMaxLength(16);
        send.Property(s => s.LastError).HasMaxLength(1000);
        send.Property(s => s.ClaimedBy).HasMaxLength(200);
        // No foreign keys: the record of a send outlives an erased participant (whose address is then replaced).
        send.HasIndex(s => s.ParticipantId);
        // The sender only ever looks for pending sends that are due.
        send.HasIndex(s => s.NextAttemptAt).HasDatabaseName("IX_email_sends_pending").HasFilter("\"Status\" = 'pending'");
    }
}
