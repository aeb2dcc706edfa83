using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Referloop.Campaigns;
using Referloop.Storage;

namespace Referloop.Dashboard.Campaigns;

public sealed class CampaignsIndexModel(ReferloopDb db) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Status { get; set; }

    public IReadOnlyList<CampaignRow> Campaigns { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct)
    {
        if (Status is not (CampaignStatus.Active or CampaignStatus.Paused or CampaignStatus.Archived))
        {
            Status = null;
        }
        Campaigns = await CampaignRow.QueryAsync(db, Status, ct);
    }
}
