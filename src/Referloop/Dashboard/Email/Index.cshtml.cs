using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Dashboard.Shared;
using Referloop.Email;
using Referloop.Storage;

namespace Referloop.Dashboard.Email;

/// <summary>One recorded send, with whether its participant still has a page to link to.</summary>
public sealed record EmailSendRow(EmailSend Send, bool ParticipantExists);

/// <summary>The e-mails recorded, newest first, by campaign, kind and status: what went out, what waits, what failed and why.</summary>
public sealed class EmailIndexModel(ReferloopDb db, IOptions<EmailOptions> options) : PageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Kind { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public bool EmailEnabled => options.Value.Enabled;
    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public IReadOnlyList<EmailSendRow> Sends { get; private set; } = [];
    public string? OlderCursor { get; private set; }
    public string? NewerCursor { get; private set; }
    public bool Filtered => Campaign is not null || Kind is not null || Status is not null;

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        Campaign = string.IsNullOrEmpty(Campaign) ? null : Campaign;
        Kind = EmailKind.All.Contains(Kind) ? Kind : null;
        Status = EmailStatus.All.Contains(Status) ? Status : null;
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);

        var sends = db.Set<EmailSend>().AsNoTracking();
        if (Campaign is not null)
        {
            sends = sends.Where(s => s.CampaignId == Campaign);
        }
        if (Kind is not null)
        {
            sends = sends.Where(s => s.Kind == Kind);
        }
        if (Status is not null)
        {
            sends = sends.Where(s => s.Status == Status);
        }
        var page = await Keyset.NewestFirstAsync(sends, s => s.Id,
            s => new EmailSendRow(s, db.Participants.Any(p => p.Id == s.ParticipantId)), r => r.Send.Id, Before, After, PageSize, ct);
        (Sends, OlderCursor, NewerCursor) = (page.Rows, page.Older, page.Newer);
        return Page();
    }

    public string CampaignName(string id) => Campaigns.FirstOrDefault(c => c.Id == id).Name ?? id;

    /// <summary>This list's address with its filters kept; a cursor pages it.</summary>
    public string Link(string? before = null, string? after = null)
    {
        var query = new List<string>();
        foreach (var (name, value) in new[] { ("campaign", Campaign), ("kind", Kind), ("status", Status), ("before", before), ("after", after) })
        {
            if (value is not null)
            {
                query.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }
        return "/admin/email" + (query.Count == 0 ? "" : "?" + string.Join("&", query));
    }
}
