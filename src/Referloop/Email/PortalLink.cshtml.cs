using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Email;

/// <summary>
/// The magic link: <c>/join/{campaign}/portal-link</c>, where an advocate enters their e-mail address and is mailed
/// the link to their portal. The answer is the same whether or not the address is known, and the form shares the
/// join page's per-address limit; one address gets at most one link per <see cref="EmailOutbox.MagicLinkInterval"/>.
/// </summary>
public sealed class PortalLinkModel(ReferloopDb db, TimeProvider clock, PublicLimits limits, EmailOutbox email)
    : HostedPageModel
{
    public static TimeSpan Interval => EmailOutbox.MagicLinkInterval;

    [BindProperty] public string? Email { get; set; }
    [BindProperty(Name = JoinModel.HoneypotField)] public string? Honeypot { get; set; }

    public string? Error { get; private set; }
    public string? Message { get; private set; }
    public string? MessageTitle { get; private set; }

    public async Task<IActionResult> OnGetAsync(string campaign, CancellationToken ct)
    {
        Use(await FindCampaignAsync(db, campaign, ct));
        if (Campaign is null || !email.Enabled)
        {
            return NotFoundPage();
        }
        Title = Text["PortalLinkTitle"];
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string campaign, CancellationToken ct)
    {
        Use(await FindCampaignAsync(db, campaign, ct));
        if (Campaign is null || !email.Enabled)
        {
            return NotFoundPage();
        }
        Title = Text["PortalLinkTitle"];
        if (!limits.TakeFormPermit(HttpContext))
        {
            return Answer(StatusCodes.Status429TooManyRequests, null, Text["TooMany"]);
        }
        if (!string.IsNullOrEmpty(Honeypot))
        {
            return Answer(StatusCodes.Status400BadRequest, null, Text["Refused"]);
        }
        var errors = new ValidationErrors();
        new JoinParticipant(Email, null, null).Validate(errors);
        if (!errors.IsEmpty)
        {
            Error = Text["EmailInvalid"];
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        await email.SendMagicLinkAsync(db, Campaign.Id, Email!, clock.GetUtcNow(), ct);
        return Answer(StatusCodes.Status200OK, Text["PortalLinkSentTitle"], Text["PortalLinkSentText"]);
    }

    private PageResult Answer(int status, string? title, string message)
    {
        MessageTitle = title;
        Message = message;
        Response.StatusCode = status;
        return Page();
    }
}
