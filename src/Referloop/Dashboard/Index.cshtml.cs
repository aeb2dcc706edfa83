using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Dashboard.Campaigns;
using Referloop.Storage;

namespace Referloop.Dashboard;

public sealed class OverviewModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    public IReadOnlyList<CampaignRow> Campaigns { get; private set; } = [];
    public int ActiveCampaigns { get; private set; }
    public int Participants { get; private set; }
    public int ClicksLast30Days { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        Campaigns = await CampaignRow.QueryAsync(db, status: null, ct);
        ActiveCampaigns = Campaigns.Count(c => c.Status == CampaignStatus.Active);
        Participants = await db.Participants.CountAsync(ct);
        var since = clock.GetUtcNow().AddDays(-30);
        ClicksLast30Days = await db.Clicks.CountAsync(c => c.CreatedAt >= since, ct);
    }
}
