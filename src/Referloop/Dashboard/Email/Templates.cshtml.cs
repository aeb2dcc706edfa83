using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Email;
using Referloop.Storage;

namespace Referloop.Dashboard.Email;

/// <summary>A campaign's e-mails: each kind, whether the campaign replaces its default texts, and a link to edit it.</summary>
public sealed class EmailTemplatesModel(ReferloopDb db) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    public Campaign Campaign { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == Id, ct);
        if (campaign is null)
        {
            return NotFound();
        }
        Campaign = campaign;
        return Page();
    }

    /// <summary>Which parts of the kind's mail the campaign sets itself; empty: all defaults.</summary>
    public IReadOnlyList<string> CustomParts(string kind) => Parts(Campaign.Email?.For(kind));

    public static IReadOnlyList<string> Parts(EmailTemplate? template) =>
        template is null ? [] : new[] { ("subject", template.Subject), ("text", template.Text), ("HTML", template.Html) }
            .Where(p => p.Item2 is not null).Select(p => p.Item1).ToList();
}
