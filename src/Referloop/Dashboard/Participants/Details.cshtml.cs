using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.Dashboard.Participants;

public sealed class ParticipantDetailsModel(ReferloopDb db, PublicUrls urls, Referloop.Webhooks.DeliveryEngine deliveries, TimeProvider clock) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string CampaignId { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    public Participant Participant { get; private set; } = null!;
    public string CampaignName { get; private set; } = "";
    public string ShareUrl => urls.ShareUrl(Participant.Code);
    public IReadOnlyList<Click> Clicks { get; private set; } = [];
    public Participant? ReferredBy { get; private set; }

    /// <summary>The friends this person referred, and the referral that brought them in (if any).</summary>
    public IReadOnlyList<(Referral Referral, string FriendEmail)> Referrals { get; private set; } = [];
    public Referral? OwnReferral { get; private set; }

    /// <summary>Rewards this person receives, as advocate or as friend.</summary>
    public IReadOnlyList<Reward> Rewards { get; private set; } = [];
    public IReadOnlyDictionary<string, string> RewardOwners => new Dictionary<string, string> { [Participant.Id] = Participant.Email };

    /// <summary>The badge colour of a risk level, from the status colours the stylesheet already has.</summary>
    public static string RiskBadge(string level) => level switch
    {
        RiskLevel.High => "blocked",
        RiskLevel.Medium => "flagged",
        _ => "active",
    };

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var participant = await db.Participants.AsNoTracking().Include(p => p.Campaign)
            .FirstOrDefaultAsync(p => p.Id == Id && p.CampaignId == CampaignId, ct);
        if (participant is null)
        {
            return NotFound();
        }
        Participant = participant;
        CampaignName = participant.Campaign!.Name;
        Clicks = await db.Clicks.AsNoTracking().Where(c => c.ParticipantId == Id).OrderByDescending(c => c.Id).Take(200).ToListAsync(ct);
        ReferredBy = participant.ReferredById is null ? null
            : await db.Participants.AsNoTracking().FirstOrDefaultAsync(p => p.Id == participant.ReferredById, ct);
        Referrals = (await db.Referrals.AsNoTracking().Where(r => r.AdvocateId == Id).OrderByDescending(r => r.Id).Take(200)
                .Select(r => new { Referral = r, FriendEmail = r.Friend!.Email }).ToListAsync(ct))
            .Select(r => (r.Referral, r.FriendEmail)).ToList();
        OwnReferral = await db.Referrals.AsNoTracking().FirstOrDefaultAsync(r => r.FriendId == Id, ct);
        Rewards = await db.Rewards.AsNoTracking().Where(r => r.ParticipantId == Id).OrderByDescending(r => r.Id).Take(200).ToListAsync(ct);
        return Page();
    }

    /// <summary>A portal link issued by the last post, shown once: only its hash is kept.</summary>
    [TempData]
    public string? IssuedPortalLink { get; set; }

    public async Task<IActionResult> OnPostPortalLinkAsync(CancellationToken ct)
    {
        if (await PortalTokens.IssueAsync(db, CampaignId, Id, clock.GetUtcNow(), ct) is not { } token)
        {
            return NotFound();
        }
        IssuedPortalLink = urls.PortalUrl(token);
        TempData["Notice"] = "A new portal link was issued; the one before it no longer opens the portal.";
        return Redirect($"/admin/campaigns/{CampaignId}/participants/{Id}#portal");
    }

    public async Task<IActionResult> OnPostRevokePortalLinkAsync(CancellationToken ct)
    {
        if (!await PortalTokens.RevokeAsync(db, CampaignId, Id, clock.GetUtcNow(), ct))
        {
            return NotFound();
        }
        TempData["Notice"] = "The portal link was revoked.";
        return Redirect($"/admin/campaigns/{CampaignId}/participants/{Id}#portal");
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken ct)
    {
        var deleted = await ParticipantsApi.Delete(CampaignId, Id, db, deliveries, clock, ct);
        if (deleted.Result is not Microsoft.AspNetCore.Http.HttpResults.NoContent)
        {
            return NotFound();
        }
        TempData["Notice"] = "The participant and every record of them were deleted.";
        return Redirect($"/admin/campaigns/{CampaignId}");
    }
}
