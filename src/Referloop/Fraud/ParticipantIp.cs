using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Fraud;

/// <summary>
/// An IP address a participant used for their own actions (their sign-up or purchase events). The <c>sameIp</c>
/// check compares a friend's IP against these; clicks cannot serve, because clicks are made by friends.
/// </summary>
public sealed class ParticipantIp
{
    public required string ParticipantId { get; init; }
    public required string Ip { get; init; }
    public DateTimeOffset FirstSeenAt { get; init; }
    public DateTimeOffset LastSeenAt { get; set; }
}

internal sealed class ParticipantIpConfiguration : IEntityTypeConfiguration<ParticipantIp>
{
    public void Configure(EntityTypeBuilder<ParticipantIp> ip)
    {
        ip.ToTable("participant_ips");
        ip.HasKey(p => new { p.ParticipantId, p.Ip });
        ip.Property(p => p.ParticipantId).HasMaxLength(40);
        ip.Property(p => p.Ip).HasMaxLength(45);
        // Deleting a participant (a personal-data request) deletes the addresses recorded for them.
        ip.HasOne<Participant>().WithMany().HasForeignKey(p => p.ParticipantId).OnDelete(DeleteBehavior.Cascade);
    }
}

/// <summary>Records the signals the fraud checks read later.</summary>
public static class FraudSignals
{
    /// <summary>
    /// Remembers that <paramref name="participantId"/> acted from <paramref name="ip"/>. Written at once with an
    /// upsert (inside the caller's transaction when one is open) rather than through the change tracker, so that
    /// two concurrent events from one address cannot make the caller's own <c>SaveChanges</c> fail. Text that is
    /// not an IP address is ignored.
    /// </summary>
    public static async Task RecordIpAsync(ReferloopDb db, string participantId, string? ip, DateTimeOffset now,
        CancellationToken ct = default)
    {
        if (BlockLists.CanonicalIp(ip) is not { } address)
        {
            return;
        }
        var seen = UtcTicksConverter.SqlValue(db, now);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO participant_ips ("ParticipantId", "Ip", "FirstSeenAt", "LastSeenAt")
            VALUES ({participantId}, {address}, {seen}, {seen})
            ON CONFLICT ("ParticipantId", "Ip") DO UPDATE SET "LastSeenAt" = excluded."LastSeenAt"
            """, ct);
    }
}
