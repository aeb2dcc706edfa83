using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Dashboard.Shared;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Campaigns;

public sealed class CampaignDetailsModel(ReferloopDb db, TimeProvider clock, PublicUrls urls, OutboxSignal signal) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? Search { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public const int PageSize = 50;

    public Campaign Campaign { get; private set; } = null!;
    public IReadOnlyList<Participant> Participants { get; private set; } = [];
    public string? OlderCursor { get; private set; }
    public string? NewerCursor { get; private set; }
    public int ParticipantCount { get; private set; }
    public int ClickCount { get; private set; }
    public string ShareUrlPattern => urls.ShareUrl("{code}");
    public string BaseUrl => urls.Base;
    public string? JoinError { get; private set; }
    public string? StatusError { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    /// <summary>The campaign's participants, referrals or rewards as a CSV download, as the API exports them.</summary>
    public async Task<IActionResult> OnGetExportAsync(string? what, CancellationToken ct)
    {
        var (columns, rows) = what switch
        {
            "participants" => (CampaignCsv.ParticipantColumns, CampaignCsv.ParticipantRows(db, urls, Id)),
            "referrals" => (CampaignCsv.ReferralColumns, CampaignCsv.ReferralRows(db, Id)),
            "rewards" => (CampaignCsv.RewardColumns, CampaignCsv.RewardRows(db, Id)),
            _ => (null, null),
        };
        if (columns is null || rows is null || !await db.Campaigns.AnyAsync(c => c.Id == Id, ct))
        {
            return NotFound();
        }
        Response.ContentType = CampaignCsv.ContentType;
        Response.Headers.ContentDisposition = $"attachment; filename=\"{what}-{Id}.csv\"";
        await CampaignCsv.WriteAsync(Response.Body, columns, rows, ct);
        return new EmptyResult();
    }

    public async Task<IActionResult> OnPostStatusAsync(string? status, CancellationToken ct)
    {
        if (status is null || !CampaignStatus.All.Contains(status))
        {
            return BadRequest();
        }
        var result = await CampaignStatusChange.ApplyAsync(db, clock, Id, status, ct);
        if (result.NotFound)
        {
            return NotFound();
        }
        if (result.Conflict is not null)
        {
            db.ChangeTracker.Clear();
            if (!await LoadAsync(ct))
            {
                return NotFound();
            }
            StatusError = result.Conflict;
            Response.StatusCode = StatusCodes.Status409Conflict;
            return Page();
        }
        TempData["Notice"] = status switch
        {
            CampaignStatus.Paused => "Campaign paused: share links still land, but nothing is attributed.",
            CampaignStatus.Archived => "Campaign archived.",
            _ => "Campaign resumed.",
        };
        return Redirect($"/admin/campaigns/{Id}");
    }

    public async Task<IActionResult> OnPostJoinAsync(string? email, string? name, CancellationToken ct)
    {
        var input = new JoinParticipant(email, name, null);
        var errors = new ValidationErrors();
        input.Validate(errors);
        if (!await LoadAsync(ct))
        {
            return NotFound();
        }
        if (!errors.IsEmpty)
        {
            JoinError = string.Join(" ", errors.ToDictionary().Select(e => $"{e.Key} {string.Join(" ", e.Value)}"));
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        if (Campaign.Status == CampaignStatus.Archived)
        {
            JoinError = "The campaign is archived; nobody can join it any more.";
            Response.StatusCode = StatusCodes.Status409Conflict;
            return Page();
        }
        var (participant, created) = await ParticipantDirectory.JoinAsync(db, clock, urls, Campaign, email!, name, null, ct);
        signal.Poke();
        TempData["Notice"] = created ? $"{participant.Email} joined; their share link is {urls.ShareUrl(participant.Code)}"
            : $"{participant.Email} was already in this campaign.";
        return Redirect($"/admin/campaigns/{Id}/participants/{participant.Id}");
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == Id, ct);
        if (campaign is null)
        {
            return false;
        }
        Campaign = campaign;
        var participants = db.Participants.AsNoTracking().Where(p => p.CampaignId == Id);
        ParticipantCount = await participants.CountAsync(ct);
        ClickCount = await db.Clicks.CountAsync(c => c.CampaignId == Id, ct);
        var page = await Keyset.NewestFirstAsync(participants.Matching(Search), p => p.Id, p => p, p => p.Id, Before, After, PageSize, ct);
        (Participants, OlderCursor, NewerCursor) = (page.Rows, page.Older, page.Newer);
        return true;
    }

    /// <summary>The participant list's address with its search kept; a cursor pages it.</summary>
    public string ParticipantsLink(string? before = null, string? after = null)
    {
        var query = new List<string>();
        if (!string.IsNullOrWhiteSpace(Search))
        {
            query.Add("search=" + Uri.EscapeDataString(Search));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        if (after is not null)
        {
            query.Add("after=" + Uri.EscapeDataString(after));
        }
        return $"/admin/campaigns/{Id}" + (query.Count == 0 ? "" : "?" + string.Join("&", query)) + "#participants";
    }

    public static string Describe(Incentive? incentive) => incentive?.Type switch
    {
        IncentiveType.Rebate => $"{incentive.Amount:0.##} {incentive.Currency} rebate",
        IncentiveType.DiscountCoupon => $"coupon from pool “{incentive.Pool}”",
        IncentiveType.Other => incentive.Description ?? "other",
        _ => "—",
    };

    public static string Describe(RewardRule rule)
    {
        var who = rule.Recipient switch { RewardRecipient.Both => "Advocate and friend each", RewardRecipient.Friend => "Friend", _ => "Advocate" };
        var get = rule.Recipient == RewardRecipient.Both ? "get" : "gets";
        var when = rule.Trigger switch
        {
            RewardTrigger.Invited => "when a friend signs up",
            RewardTrigger.Event => $"when a friend does “{rule.Event}”",
            _ => "when a friend converts",
        };
        var what = rule.Kind switch
        {
            RewardKind.Milestone => $"{get} at " + string.Join(", ", (rule.Tiers ?? []).Select(t => $"{t.Referrals} referrals: {Describe(t.Incentive)}")),
            RewardKind.Goal => $"{get} on conversion number {rule.Goal?.ToString() ?? "N (campaign goal)"}: {Describe(rule.Incentive)}",
            _ => $"{get} {Describe(rule.Incentive)}",
        };
        var limits = rule.Limits is null ? "" :
            " (" + string.Join(", ", new[] { rule.Limits.PerMonth is { } m ? $"at most {m} a month" : null, rule.Limits.Total is { } t ? $"{t} in total" : null }.OfType<string>()) + ")";
        return $"{who} {what} {when}{limits}.";
    }
}
