using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Email;
using Referloop.Http;
using Referloop.Storage;

namespace Referloop.Dashboard.Email;

/// <summary>
/// One mail of a campaign: its subject, text and HTML, checked by the campaign API's own rules
/// (<see cref="EmailSettings.Validate"/>), put back to the default, and previewed for a made-up advocate through the
/// renderer the sender uses. A part left as the default's text stays the default, so it follows the campaign's language.
/// </summary>
public sealed class EmailTemplateModel(ReferloopDb db, TimeProvider clock, PublicUrls urls) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string Kind { get; set; } = "";

    [BindProperty] public string? Subject { get; set; }
    [BindProperty] public string? Text { get; set; }
    [BindProperty] public string? Html { get; set; }

    public Campaign Campaign { get; private set; } = null!;
    public string DefaultSubject { get; private set; } = "";
    public string DefaultText { get; private set; } = "";

    /// <summary>The template as stored (null: every part is the default).</summary>
    public EmailTemplate? Stored { get; private set; }

    public RenderedEmail? Preview { get; private set; }

    /// <summary>Whether the preview shows what was typed rather than what is saved.</summary>
    public bool PreviewIsDraft { get; private set; }

    public Dictionary<string, string[]> Errors { get; private set; } = [];

    public string? Error(string part) => Errors.TryGetValue(part, out var messages) ? string.Join(" ", messages) : null;

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (!await LoadAsync(tracked: false, ct))
        {
            return NotFound();
        }
        Subject = Stored?.Subject ?? DefaultSubject;
        Text = Stored?.Text ?? DefaultText;
        Html = Stored?.Html;
        Show(EmailPreview.Render(Campaign, Kind, Stored, urls), draft: false);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (!await LoadAsync(tracked: true, ct))
        {
            return NotFound();
        }
        var template = Typed();
        if (!Valid(template))
        {
            return Invalid();
        }
        Campaign.Email = (Campaign.Email ?? new EmailSettings()).With(Kind, template).Normalise();
        Campaign.UpdatedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(ct);
        TempData["Notice"] = $"The {EmailPreview.Label(Kind).ToLowerInvariant()} mail is saved.";
        return Redirect($"/admin/campaigns/{Campaign.Id}/email/{Kind}");
    }

    /// <summary>Renders what was typed, without saving it.</summary>
    public async Task<IActionResult> OnPostPreviewAsync(CancellationToken ct)
    {
        if (!await LoadAsync(tracked: false, ct))
        {
            return NotFound();
        }
        var template = Typed();
        if (!Valid(template))
        {
            return Invalid();
        }
        Show(EmailPreview.Render(Campaign, Kind, new EmailSettings().With(Kind, template).Normalise().For(Kind), urls), draft: true);
        return Page();
    }

    private void Show(RenderedEmail preview, bool draft)
    {
        Preview = preview;
        PreviewIsDraft = draft;
        if (preview.Html is not null)
        {
            HttpContext.Items[DashboardSetup.MailPreviewItem] = true;
        }
    }

    public async Task<IActionResult> OnPostResetAsync(CancellationToken ct)
    {
        if (!await LoadAsync(tracked: true, ct))
        {
            return NotFound();
        }
        Campaign.Email = (Campaign.Email ?? new EmailSettings()).With(Kind, null).Normalise();
        Campaign.UpdatedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(ct);
        TempData["Notice"] = $"The {EmailPreview.Label(Kind).ToLowerInvariant()} mail is back to the default texts.";
        return Redirect($"/admin/campaigns/{Campaign.Id}/email/{Kind}");
    }

    private async Task<bool> LoadAsync(bool tracked, CancellationToken ct)
    {
        if (!EmailKind.All.Contains(Kind))
        {
            return false;
        }
        var campaigns = tracked ? db.Campaigns : db.Campaigns.AsNoTracking();
        var campaign = await campaigns.FirstOrDefaultAsync(c => c.Id == Id, ct);
        if (campaign is null)
        {
            return false;
        }
        Campaign = campaign;
        var text = EmailPreview.TextOf(campaign);
        DefaultSubject = EmailTemplates.DefaultSubject(Kind, text);
        DefaultText = EmailTemplates.DefaultText(Kind, text);
        Stored = campaign.Email?.For(Kind);
        return true;
    }

    /// <summary>The form as a template; a part equal to the default (as the form shows it) is left to the default.</summary>
    private EmailTemplate Typed() => new()
    {
        Subject = Same(Subject, DefaultSubject) ? null : Subject,
        Text = Same(Text, DefaultText) ? null : Text,
        Html = Html,
    };

    private static bool Same(string? typed, string standard) =>
        typed is not null && typed.ReplaceLineEndings("\n").Trim() == standard.ReplaceLineEndings("\n").Trim();

    /// <summary>The campaign API's rules for this one mail; errors keyed by part (subject, text, html).</summary>
    private bool Valid(EmailTemplate template)
    {
        var errors = new ValidationErrors();
        new EmailSettings().With(Kind, template).Validate(errors, "email");
        Errors = errors.ToDictionary().ToDictionary(e => e.Key[(e.Key.LastIndexOf('.') + 1)..], e => e.Value);
        return Errors.Count == 0;
    }

    private PageResult Invalid()
    {
        Preview = null;
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }
}
