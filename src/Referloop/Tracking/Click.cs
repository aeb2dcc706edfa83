using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Participants;

namespace Referloop.Tracking;

/// <summary>One visit through an advocate's share link.</summary>
public sealed class Click
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string ParticipantId { get; init; }
    public Participant? Participant { get; init; }
    public string? Ip { get; init; }
    public string? UserAgent { get; init; }
    public string? Referrer { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

internal sealed class ClickConfiguration : IEntityTypeConfiguration<Click>
{
    public void Configure(EntityTypeBuilder<Click> click)
    {
        click.ToTable("clicks");
        click.HasKey(c => c.Id);
        click.Property(c => c.Id).HasMaxLength(40);
        click.Property(c => c.CampaignId).HasMaxLength(40);
        click.Property(c => c.ParticipantId).HasMaxLength(40);
        click.Property(c => c.Ip).HasMaxLength(45);
        click.Property(c => c.UserAgent).HasMaxLength(512);
        click.Property(c => c.Referrer).HasMaxLength(2048);
        click.HasOne(c => c.Participant).WithMany().HasForeignKey(c => c.ParticipantId).OnDelete(DeleteBehavior.Cascade);
        click.HasIndex(c => c.ParticipantId);
        // Attribution by "an earlier click from the same IP inside the window" reads this index.
        click.HasIndex(c => new { c.CampaignId, c.Ip, c.CreatedAt });
    }
}
