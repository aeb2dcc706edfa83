using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Dashboard.Campaigns;

public sealed record CampaignRow(string Id, string Name, string Status, int Participants, int Clicks, DateTimeOffset CreatedAt)
{
    public static async Task<IReadOnlyList<CampaignRow>> QueryAsync(ReferloopDb db, string? status, CancellationToken ct)
    {
        var campaigns = db.Campaigns.AsNoTracking();
        if (status is not null)
        {
            campaigns = campaigns.Where(c => c.Status == status);
        }
        return await campaigns
            .OrderByDescending(c => c.Id)
            .Take(500)
            .Select(c => new CampaignRow(c.Id, c.Name, c.Status,
                db.Participants.Count(p => p.CampaignId == c.Id),
                db.Clicks.Count(k => k.CampaignId == c.Id),
                c.CreatedAt))
            .ToListAsync(ct);
    }
}
