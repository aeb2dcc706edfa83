using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Dashboard.Participants;

public sealed record ParticipantListRow(Participant Participant, string CampaignName);

/// <summary>Everyone in every campaign, newest first, searched by email, name or code like the API's list.</summary>
public sealed class ParticipantsIndexModel(ReferloopDb db) : PageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Search { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public IReadOnlyList<ParticipantListRow> Participants { get; private set; } = [];
    public string? OlderCursor { get; private set; }
    public string? NewerCursor { get; private set; }

    /// <summary>Whether anybody at all is in the chosen campaigns: an empty search result reads differently from an empty program.</summary>
    public bool AnyParticipants { get; private set; }

    public bool Searching => !string.IsNullOrWhiteSpace(Search);

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        Campaign = string.IsNullOrEmpty(Campaign) ? null : Campaign;
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);
        var participants = db.Participants.AsNoTracking();
        if (Campaign is not null)
        {
            participants = participants.Where(p => p.CampaignId == Campaign);
        }
        AnyParticipants = await participants.AnyAsync(ct);
        var page = await Keyset.NewestFirstAsync(participants.Matching(Search), p => p.Id,
            p => new ParticipantListRow(p, p.Campaign!.Name), r => r.Participant.Id, Before, After, PageSize, ct);
        (Participants, OlderCursor, NewerCursor) = (page.Rows, page.Older, page.Newer);
        return Page();
    }

    /// <summary>This list's address with its search and campaign kept; a cursor pages it.</summary>
    public string Link(string? before = null, string? after = null)
    {
        var query = new List<string>();
        if (Searching)
        {
            query.Add("search=" + Uri.EscapeDataString(Search!.Trim()));
        }
        if (Campaign is not null)
        {
            query.Add("campaign=" + Uri.EscapeDataString(Campaign));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        if (after is not null)
        {
            query.Add("after=" + Uri.EscapeDataString(after));
        }
        return "/admin/participants" + (query.Count == 0 ? "" : "?" + string.Join("&", query));
    }
}
