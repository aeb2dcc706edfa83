using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Rewards;
using Referloop.Storage;

namespace Referloop.Dashboard.Rewards;

public sealed record RewardRow(Reward Reward, string Email, string CampaignName);

public sealed class RewardsIndexModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    /// <summary><c>unpaid</c> (issued, not paid yet) or <c>paid</c>.</summary>
    [BindProperty(SupportsGet = true)]
    public string? Paid { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    public static IReadOnlyList<string> Statuses => RewardStatus.All;

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public IReadOnlyList<RewardRow> Rewards { get; private set; } = [];
    public string? NextBefore { get; private set; }
    public int Total { get; private set; }
    public int ToPay { get; private set; }

    /// <summary>The filters as the list understands them: anything else is no filter.</summary>
    private void CleanFilters()
    {
        if (Status is not null && !Statuses.Contains(Status))
        {
            Status = null;
        }
        Paid = Paid is "paid" or "unpaid" ? Paid : null;
        Campaign = string.IsNullOrEmpty(Campaign) ? null : Campaign;
    }

    public async Task OnGetAsync(CancellationToken ct)
    {
        CleanFilters();
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);

        var rewards = db.Rewards.AsNoTracking();
        if (Campaign is not null)
        {
            rewards = rewards.Where(r => r.CampaignId == Campaign);
        }
        Total = await rewards.CountAsync(ct);
        ToPay = await rewards.CountAsync(r => r.Status == RewardStatus.Issued && r.PaidAt == null, ct);
        if (Status is not null)
        {
            rewards = rewards.Where(r => r.Status == Status);
        }
        rewards = Paid switch
        {
            "paid" => rewards.Where(r => r.PaidAt != null),
            "unpaid" => rewards.Where(r => r.Status == RewardStatus.Issued && r.PaidAt == null),
            _ => rewards,
        };
        if (!string.IsNullOrEmpty(Before))
        {
            rewards = rewards.Where(r => string.Compare(r.Id, Before) < 0);
        }
        var rows = await rewards.OrderByDescending(r => r.Id).Take(PageSize + 1)
            .Select(r => new RewardRow(r,
                db.Participants.Where(p => p.Id == r.ParticipantId).Select(p => p.Email).FirstOrDefault() ?? r.ParticipantId,
                db.Campaigns.Where(c => c.Id == r.CampaignId).Select(c => c.Name).FirstOrDefault() ?? r.CampaignId))
            .ToListAsync(ct);
        NextBefore = rows.Count > PageSize ? rows[PageSize - 1].Reward.Id : null;
        Rewards = rows.Take(PageSize).ToList();
    }

    public async Task<IActionResult> OnPostPaidAsync(string id, CancellationToken ct)
    {
        // The filters come back in the redirect to the list: cleaned first, or a stray value would break the answer
        // after the payment is written.
        CleanFilters();
        var (reward, conflict) = await RewardsApi.MarkPaidAsync(db, id, clock.GetUtcNow(), ct);
        if (reward is null)
        {
            return NotFound();
        }
        TempData["Notice"] = conflict ?? $"Reward marked paid on {reward.PaidAt:yyyy-MM-dd}.";
        return Redirect(Link(Status, Paid));
    }

    public string Link(string? status, string? paid, string? before = null)
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
        if (paid is not null)
        {
            query.Add("paid=" + Uri.EscapeDataString(paid));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        return "/admin/rewards" + (query.Count == 0 ? "" : "?" + string.Join("&", query));
    }
}
