using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.Dashboard.Events;

/// <summary>The received events, newest first: what the shop reported, from where, and what each did.</summary>
public sealed class EventsIndexModel(ReferloopDb db) : PageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Type { get; set; }

    /// <summary>Show events older than this id (keyset paging, newest first).</summary>
    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public IReadOnlyList<EventResponse> Events { get; private set; } = [];
    public string? NextBefore { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        Campaign = string.IsNullOrEmpty(Campaign) ? null : Campaign;
        Type = string.IsNullOrWhiteSpace(Type) ? null : Type.Trim();
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);

        var events = db.Events.AsNoTracking();
        if (Campaign is not null)
        {
            events = events.Where(e => e.CampaignId == Campaign);
        }
        if (Type is not null)
        {
            events = events.Where(e => e.Type == Type);
        }
        if (!string.IsNullOrEmpty(Before))
        {
            events = events.Where(e => string.Compare(e.Id, Before) < 0);
        }
        var rows = await events.OrderByDescending(e => e.Id).Take(PageSize + 1).ToListAsync(ct);
        NextBefore = rows.Count > PageSize ? rows[PageSize - 1].Id : null;
        Events = rows.Take(PageSize).Select(EventResponse.From).ToList();
        return Page();
    }

    public string Link(string? before)
    {
        var query = new List<string>();
        if (Campaign is not null)
        {
            query.Add("campaign=" + Uri.EscapeDataString(Campaign));
        }
        if (Type is not null)
        {
            query.Add("type=" + Uri.EscapeDataString(Type));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        return "/admin/events" + (query.Count == 0 ? "" : "?" + string.Join("&", query));
    }

    /// <summary>One line on what the event did: the referral's status, or why nobody was credited.</summary>
    public static string Result(EventResponse e) => e.Outcome switch
    {
        null => "not processed",
        { Attributed: false } o => "not attributed: " + o.Reason,
        { Referral: { } r } => $"referral {r.Status}",
        _ => "attributed",
    };
}
