using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.SocialProof;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.HostedPages;

/// <summary>
/// The page for the person invited, <c>/r/{code}/join</c>, where <c>/r/{code}</c> sends friends when the campaign's
/// <c>page.shareLink</c> is <c>page</c>. The form reports a <c>signup</c> through the same ingest as
/// <c>POST /api/v1/events</c> from a browser (attribution by the click, fraud checks, <c>invited</c> rewards,
/// <c>participant.joined</c>), then sends the browser on to the landing URL with the click id, as the link would have.
/// </summary>
public sealed class InvitedModel(ReferloopDb db, EventIngest ingest, PublicLimits limits) : HostedPageModel
{
    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty(Name = JoinModel.HoneypotField)] public string? Honeypot { get; set; }

    /// <summary>The click <c>/r/{code}</c> recorded, carried in the page's address and form.</summary>
    [BindProperty(SupportsGet = true, Name = ShareLinks.ClickParameter)]
    public string? ClickId { get; set; }

    public Dictionary<string, string> Errors { get; } = [];

    public string? Message { get; private set; }

    public string? AdvocateFirstName { get; private set; }

    public string Code { get; private set; } = "";

    /// <summary>The landing URL with <c>ref</c> and the click id, where "no thanks" and the form both lead.</summary>
    public string LandingTarget => ShareLinks.LandingTarget(Campaign!.LandingUrl, Code, ValidClickId);

    private string? ValidClickId => ClickId is { Length: > 4 and <= 40 } id && id.StartsWith("clk_", StringComparison.Ordinal) ? id : null;

    public async Task<IActionResult> OnGetAsync(string code, CancellationToken ct)
    {
        var advocate = await LoadAsync(code, ct);
        if (advocate is null)
        {
            return NotFoundPage();
        }
        if (!ShowsPage())
        {
            return Redirect($"/r/{Uri.EscapeDataString(code)}");
        }
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string code, CancellationToken ct)
    {
        var advocate = await LoadAsync(code, ct);
        if (advocate is null)
        {
            return NotFoundPage();
        }
        if (!ShowsPage())
        {
            return Redirect($"/r/{Uri.EscapeDataString(code)}");
        }
        if (!limits.TakeFormPermit(HttpContext) || limits.TakeKeyPermit(HttpContext, Campaign!.Id) is not null)
        {
            return Refuse(StatusCodes.Status429TooManyRequests, Text["TooMany"]);
        }
        if (!string.IsNullOrEmpty(Honeypot))
        {
            return Refuse(StatusCodes.Status400BadRequest, Text["Refused"]);
        }

        // The click names the advocate; without one (cookies and address lost) the code does.
        var input = new TrackEvent
        {
            CampaignId = Campaign.Id,
            Type = "signup",
            Email = Email?.Trim(),
            Name = string.IsNullOrWhiteSpace(Name) ? null : Name.Trim(),
            ClickId = ValidClickId,
            ReferralCode = ValidClickId is null ? code : null,
        };
        var errors = new ValidationErrors();
        input.Validate(errors);
        foreach (var field in errors.ToDictionary().Keys)
        {
            Errors[field == "name" ? "name" : "email"] = field == "name" ? Text["NameTooLong"] : Text["EmailInvalid"];
        }
        if (Errors.Count > 0)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        await ingest.TrackAsync(new TrackRequest(Campaign, input, null, HttpContext.Connection.RemoteIpAddress?.ToString(),
            Truncate(Request.Headers.UserAgent.ToString(), 512), EventSource.Browser));
        return new RedirectResult(LandingTarget, permanent: false, preserveMethod: false);
    }

    private bool ShowsPage()
    {
        if (Campaign!.Status != CampaignStatus.Active || Settings.ShareLink != ShareLinkMode.Page)
        {
            return false;
        }
        // The form posts here and the answer sends the browser on to the landing page: the policy must allow both.
        if (Uri.TryCreate(Campaign.LandingUrl, UriKind.Absolute, out var landing))
        {
            HttpContext.Items[HostedPagesSetup.FormTargetItem] = landing.GetLeftPart(UriPartial.Authority);
        }
        return true;
    }

    private async Task<Participant?> LoadAsync(string code, CancellationToken ct)
    {
        var advocate = code.Length > 32 ? null : await db.Participants.AsNoTracking().Include(p => p.Campaign)
            .FirstOrDefaultAsync(p => p.Code == code, ct);
        Use(advocate?.Campaign);
        if (advocate is null)
        {
            return null;
        }
        Code = advocate.Code;
        AdvocateFirstName = Names.FromFullName(advocate.Name).First;
        Title = AdvocateFirstName is null ? Text["InvitedHeadlineAnonymous"] : Text.Format("InvitedHeadline", AdvocateFirstName);
        return advocate;
    }

    private PageResult Refuse(int status, string message)
    {
        Message = message;
        Response.StatusCode = status;
        return Page();
    }

    private static string? Truncate(string value, int max) =>
        string.IsNullOrEmpty(value) ? null : value.Length <= max ? value : value[..max];
}
