using Microsoft.EntityFrameworkCore;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Participants;

/// <summary>Finds or creates participants by email; shared by the API, tracking and inbound hooks.</summary>
public static class ParticipantDirectory
{
    public static async Task<(Participant Participant, bool Created)> JoinAsync(ReferloopDb db, TimeProvider clock,
        string campaignId, string email, string? name, string? customValue, CancellationToken ct)
    {
        var normalised = Participant.NormaliseEmail(email);
        for (var attempt = 0; ; attempt++)
        {
            var existing = await db.Participants.FirstOrDefaultAsync(p => p.CampaignId == campaignId && p.Email == normalised, ct);
            if (existing is not null)
            {
                var changed = false;
                if (name is not null && existing.Name != name.Trim())
                {
                    existing.Name = name.Trim();
                    changed = true;
                }
                if (customValue is not null && existing.CustomValue != customValue)
                {
                    existing.CustomValue = customValue;
                    changed = true;
                }
                if (!existing.IsReferrer)
                {
                    existing.IsReferrer = true;
                    changed = true;
                }
                if (changed)
                {
                    existing.UpdatedAt = clock.GetUtcNow();
                    await db.SaveChangesAsync(ct);
                }
                return (existing, false);
            }

            var now = clock.GetUtcNow();
            var participant = new Participant
            {
                Id = Ids.New("par"),
                CampaignId = campaignId,
                Email = normalised,
                Name = string.IsNullOrWhiteSpace(name) ? null : name.Trim(),
                CustomValue = customValue,
                Code = Secrets.NewCode(),
                IsReferrer = true,
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Participants.Add(participant);
            try
            {
                await db.SaveChangesAsync(ct);
                return (participant, true);
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // A concurrent join of the same email, or (rarely) a code collision: look again.
                db.Entry(participant).State = EntityState.Detached;
            }
        }
    }
}
