using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Campaigns;

/// <summary>What a pause, resume or archive did: the campaign as it now is, or why it was left as it was.</summary>
public sealed record CampaignStatusResult(Campaign? Campaign, string? Conflict)
{
    public bool NotFound => Campaign is null && Conflict is null;
}

/// <summary>
/// The one place a campaign's status changes, for the API and the dashboard alike: its rules and anything that must
/// happen alongside a change belong here.
/// </summary>
public static class CampaignStatusChange
{
    public static async Task<CampaignStatusResult> ApplyAsync(ReferloopDb db, TimeProvider clock, string id, string status,
        CancellationToken ct)
    {
        if (!CampaignStatus.All.Contains(status))
        {
            throw new ArgumentOutOfRangeException(nameof(status), status, "not a campaign status");
        }
        var campaign = await db.Campaigns.FirstOrDefaultAsync(c => c.Id == id, ct);
        if (campaign is null)
        {
            return new(null, null);
        }
        if (campaign.Status == CampaignStatus.Archived && status != CampaignStatus.Archived)
        {
            return new(campaign, "The campaign is archived; an archived campaign cannot be paused or resumed.");
        }
        if (campaign.Status != status)
        {
            campaign.Status = status;
            campaign.UpdatedAt = clock.GetUtcNow();
            await db.SaveChangesAsync(ct);
        }
        return new(campaign, null);
    }
}
