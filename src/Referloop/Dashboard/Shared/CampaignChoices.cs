using Microsoft.EntityFrameworkCore;
using Referloop.Storage;

namespace Referloop.Dashboard.Shared;

/// <summary>The campaigns a page's campaign filter offers.</summary>
public static class CampaignChoices
{
    public static async Task<IReadOnlyList<(string Id, string Name)>> NewestFirstAsync(ReferloopDb db, CancellationToken ct) =>
        (await db.Campaigns.AsNoTracking().OrderByDescending(c => c.Id).Select(c => new { c.Id, c.Name }).Take(500).ToListAsync(ct))
            .Select(c => (c.Id, c.Name)).ToList();
}
