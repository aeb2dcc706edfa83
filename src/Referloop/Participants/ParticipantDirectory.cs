using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Participants;

/// <summary>The <c>data</c> of <c>participant.joined</c>.</summary>
public sealed record ParticipantJoinedData(CampaignRef Campaign, ParticipantData Participant, ParticipantData? ReferredBy);

public sealed record CampaignRef(string Id, string Name);

public sealed record ParticipantData(string Id, string Email, string? Name, string Code, string? CustomValue, string ShareUrl,
    string Role, IReadOnlyList<string> Roles)
{
    public static ParticipantData From(Participant p, PublicUrls urls, string role) =>
        new(p.Id, p.Email, p.Name, p.Code, p.CustomValue, urls.ShareUrl(p.Code), role, p.Roles);
}

/// <summary>Finds or creates participants by email; shared by the API, tracking and inbound hooks.</summary>
public static class ParticipantDirectory
{
    /// <summary>
    /// Joins <paramref name="email"/> to the campaign as a referrer. A new participant is written together with
    /// its <c>participant.joined</c> event; the same email again returns the existing participant.
    /// </summary>
    /// <param name="portalTokenHash">Given by the hosted join page: a new participant is written with its portal link.</param>
    /// <param name="keepExisting">
    /// Given by the hosted join page, where anyone may type any address: an existing participant keeps their name and
    /// custom value. An advocate is left as they are; an invited friend becomes an advocate, taking the name only
    /// when they have none. Without it (the API, the dashboard) the name and custom value given replace the stored ones.
    /// </param>
    public static async Task<(Participant Participant, bool Created)> JoinAsync(ReferloopDb db, TimeProvider clock,
        PublicUrls urls, Campaign campaign, string email, string? name, string? customValue, CancellationToken ct,
        string? portalTokenHash = null, bool keepExisting = false)
    {
        var normalised = Participant.NormaliseEmail(email);
        name = string.IsNullOrWhiteSpace(name) ? null : name.Trim();
        for (var attempt = 0; ; attempt++)
        {
            var existing = await db.Participants.FirstOrDefaultAsync(p => p.CampaignId == campaign.Id && p.Email == normalised, ct);
            if (existing is not null)
            {
                if (keepExisting)
                {
                    if (!existing.IsReferrer)
                    {
                        await UpdateAsync(db, clock, urls, campaign, existing, existing.Name is null ? name : null, null, ct);
                    }
                    return (existing, false);
                }
                await UpdateAsync(db, clock, urls, campaign, existing, name, customValue, ct);
                return (existing, false);
            }

            var now = clock.GetUtcNow();
            var participant = new Participant
            {
                Id = Ids.New("par"),
                CampaignId = campaign.Id,
                Email = normalised,
                Name = name,
                CustomValue = customValue,
                Code = Secrets.NewCode(),
                IsReferrer = true,
                PortalTokenHash = portalTokenHash,
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Participants.Add(participant);
            var joined = Outbox.Add(db, EventTypes.ParticipantJoined, campaign.Id,
                new ParticipantJoinedData(new CampaignRef(campaign.Id, campaign.Name),
                    ParticipantData.From(participant, urls, ParticipantRole.Referrer), null), now);
            try
            {
                await db.SaveChangesAsync(ct);
                return (participant, true);
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // A concurrent join of the same email, or (rarely) a code collision: look again.
                db.Entry(participant).State = EntityState.Detached;
                db.Entry(joined).State = EntityState.Detached;
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="email"/> an invited friend of <paramref name="advocate"/>: a new participant, or
    /// <paramref name="existing"/> (the campaign's participant with this email, null when there is none) changed in
    /// place, with its <c>participant.joined</c> (role <c>invited</c>, with <c>referredBy</c>). One already invited is
    /// returned unchanged, without a message. Nothing is written: the caller writes both with the referral.
    /// </summary>
    public static (Participant Participant, OutboxMessage? Joined) Invite(PublicUrls urls, Campaign campaign, Participant? existing,
        string email, string? name, Participant advocate, DateTimeOffset now)
    {
        name = string.IsNullOrWhiteSpace(name) ? null : name.Trim();
        var participant = existing;
        if (participant is null)
        {
            participant = new Participant
            {
                Id = Ids.New("par"),
                CampaignId = campaign.Id,
                Email = Participant.NormaliseEmail(email),
                Name = name,
                Code = Secrets.NewCode(),
                IsReferrer = false,
                IsInvited = true,
                ReferredById = advocate.Id,
                ReferredAt = now,
                CreatedAt = now,
                UpdatedAt = now,
            };
        }
        else if (!participant.IsInvited)
        {
            participant.IsInvited = true;
            participant.ReferredById = advocate.Id;
            participant.ReferredAt = now;
            participant.Name ??= name;
            participant.UpdatedAt = now;
        }
        else
        {
            return (participant, null);
        }
        return (participant, Outbox.Create(EventTypes.ParticipantJoined, campaign.Id,
            new ParticipantJoinedData(new CampaignRef(campaign.Id, campaign.Name),
                ParticipantData.From(participant, urls, ParticipantRole.Invited),
                ParticipantData.From(advocate, urls, ParticipantRole.Referrer)), now));
    }

    private static async Task UpdateAsync(ReferloopDb db, TimeProvider clock, PublicUrls urls, Campaign campaign,
        Participant existing, string? name, string? customValue, CancellationToken ct)
    {
        var becameReferrer = !existing.IsReferrer;
        var changed = becameReferrer
            || (name is not null && existing.Name != name)
            || (customValue is not null && existing.CustomValue != customValue);
        if (!changed)
        {
            return;
        }
        existing.Name = name ?? existing.Name;
        existing.CustomValue = customValue ?? existing.CustomValue;
        existing.UpdatedAt = clock.GetUtcNow();
        if (!becameReferrer)
        {
            await db.SaveChangesAsync(ct);
            return;
        }

        // An invited friend who now asks for a share link joins a second time, as a referrer. Two such joins at once
        // (the API, the join page, the dashboard) both read them as not yet a referrer: the flip is made only where it
        // still holds, and only the join that made it raises participant.joined (and with it the welcome mail). On
        // PostgreSQL the second update waits for the first's row lock and then finds the row flipped.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var flipped = await db.Participants.Where(p => p.Id == existing.Id && !p.IsReferrer)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.IsReferrer, true), ct);
        existing.IsReferrer = true;
        // Written above; the save below writes the name, custom value and time.
        db.Entry(existing).Property(p => p.IsReferrer).IsModified = false;
        if (flipped == 1)
        {
            Outbox.Add(db, EventTypes.ParticipantJoined, campaign.Id,
                new ParticipantJoinedData(new CampaignRef(campaign.Id, campaign.Name),
                    ParticipantData.From(existing, urls, ParticipantRole.Referrer), null), existing.UpdatedAt);
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
    }
}
