using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Referrals;
using Referloop.Storage;

namespace Referloop.Dashboard.Referrals;

public sealed record ReferralRow(string Id, string CampaignId, string CampaignName, string AdvocateId, string AdvocateEmail,
    string FriendId, string FriendEmail, string Status, string? Reason, IReadOnlyList<ScreeningFinding> Findings,
    DateTimeOffset CreatedAt);

public sealed class ReferralsIndexModel(ReferloopDb db) : PageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    /// <summary>Show referrals older than this id (keyset paging, newest first).</summary>
    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    /// <summary>Every status the engine knows, so a new one shows up as a filter without touching the page.</summary>
    public static IReadOnlyList<string> Statuses => ReferralStatus.All;

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public IReadOnlyList<ReferralRow> Referrals { get; private set; } = [];
    public string? NextBefore { get; private set; }
    public int Total { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (Status is not null && !Statuses.Contains(Status))
        {
            Status = null;
        }
        Campaign = string.IsNullOrEmpty(Campaign) ? null : Campaign;
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);

        var referrals = db.Referrals.AsNoTracking();
        if (Campaign is not null)
        {
            referrals = referrals.Where(r => r.CampaignId == Campaign);
        }
        Total = await referrals.CountAsync(ct);
        if (Status is not null)
        {
            referrals = referrals.Where(r => r.Status == Status);
        }
        if (!string.IsNullOrEmpty(Before))
        {
            referrals = referrals.Where(r => string.Compare(r.Id, Before) < 0);
        }
        var rows = await referrals.OrderByDescending(r => r.Id).Take(PageSize + 1)
            .Select(r => new ReferralRow(r.Id, r.CampaignId, db.Campaigns.Where(c => c.Id == r.CampaignId).Select(c => c.Name).First(),
                r.AdvocateId, r.Advocate!.Email, r.FriendId, r.Friend!.Email, r.Status, r.Reason, r.Findings, r.CreatedAt))
            .ToListAsync(ct);
        NextBefore = rows.Count > PageSize ? rows[PageSize - 1].Id : null;
        Referrals = rows.Take(PageSize).ToList();
        return Page();
    }

    public string Link(string? status, string? before = null)
    {
        var query = new List<string>();
        if (Campaign is not null)
        {
            query.Add("campaign=" + Uri.EscapeDataString(Campaign));
        }
        if (status is not null)
        {
            query.Add("status=" + Uri.EscapeDataString(status));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        return "/admin/referrals" + (query.Count == 0 ? "" : "?" + string.Join("&", query));
    }

    public static string Label(string status) => char.ToUpperInvariant(status[0]) + status[1..];
}
