using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Email;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.HostedPages;

/// <summary>
/// The page for the person referring: <c>/join/{campaign}</c> (slug or id). Registering creates the participant as
/// <c>POST /api/v1/campaigns/{id}/participants</c> does (same validation, same <c>participant.joined</c>), with a portal
/// link, and shows the portal. Anyone may type any address here, so an address that has already joined changes
/// nothing of that participant (an invited friend becomes an advocate, keeping their name) and gets the same answer as
/// the magic link page, whose link goes to the address when e-mail is on.
/// </summary>
public sealed class JoinModel(ReferloopDb db, TimeProvider clock, PublicUrls urls, PublicLimits limits, EmailOutbox email)
    : HostedPageModel
{
    /// <summary>The honeypot: hidden from people, filled by form-filling bots.</summary>
    public const string HoneypotField = "website";

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public bool Consent { get; set; }
    [BindProperty(Name = HoneypotField)] public string? Honeypot { get; set; }

    public Dictionary<string, string> Errors { get; } = [];

    /// <summary>A message that replaces the form (refused, too many attempts, closed, already joined).</summary>
    public string? Message { get; private set; }

    public string? MessageTitle { get; private set; }

    public string Headline => Settings.Headline ?? Text.Format("JoinDefaultHeadline", Campaign!.Name);

    public async Task<IActionResult> OnGetAsync(string campaign, CancellationToken ct)
    {
        Use(await FindCampaignAsync(db, campaign, ct));
        if (Campaign is null)
        {
            return NotFoundPage();
        }
        Title = Headline;
        if (Campaign.Status == CampaignStatus.Archived)
        {
            return Refuse(StatusCodes.Status200OK, Text["Closed"]);
        }
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string campaign, CancellationToken ct)
    {
        Use(await FindCampaignAsync(db, campaign, ct));
        if (Campaign is null)
        {
            return NotFoundPage();
        }
        Title = Headline;
        if (!limits.TakeFormPermit(HttpContext))
        {
            return Refuse(StatusCodes.Status429TooManyRequests, Text["TooMany"]);
        }
        if (!string.IsNullOrEmpty(Honeypot))
        {
            return Refuse(StatusCodes.Status400BadRequest, Text["Refused"]);
        }
        if (Campaign.Status == CampaignStatus.Archived)
        {
            return Refuse(StatusCodes.Status409Conflict, Text["Closed"]);
        }

        // The API's own rules, worded for the visitor.
        var errors = new ValidationErrors();
        new JoinParticipant(Email, Name, null).Validate(errors);
        foreach (var field in errors.ToDictionary().Keys)
        {
            Errors[field] = field == "name" ? Text["NameTooLong"] : Text["EmailInvalid"];
        }
        if (!Consent)
        {
            Errors["consent"] = Text["ConsentRequired"];
        }
        if (Errors.Count > 0)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        // Whoever types an address must not see that person's portal (their rewards and coupon codes), nor rename
        // them: an advocate is not written at all, and the owner of the address gets the link to their portal.
        if (await email.SendMagicLinkAsync(db, Campaign.Id, Email!, clock.GetUtcNow(), ct))
        {
            return AlreadyJoined();
        }

        // A new participant, or an invited friend who becomes an advocate (their participant.joined brings the
        // welcome mail with a portal link when e-mail is on); a friend keeps the name they have.
        var token = PortalTokens.New();
        var (_, created) = await ParticipantDirectory.JoinAsync(db, clock, urls, Campaign, Email!, Name, null, ct,
            portalTokenHash: Secrets.Hash(token), keepExisting: true);
        return created ? RedirectToPortal(token) : AlreadyJoined();
    }

    /// <summary>The answer for an address that has already joined: the magic link page's own when e-mail is on.</summary>
    private PageResult AlreadyJoined()
    {
        MessageTitle = email.Enabled ? Text["PortalLinkSentTitle"] : Text["AlreadyJoinedTitle"];
        Message = email.Enabled ? Text["PortalLinkSentText"] : Text["AlreadyJoinedText"];
        return Page();
    }

    private RedirectResult RedirectToPortal(string token) => new($"/p/{token}", permanent: false, preserveMethod: false);

    private PageResult Refuse(int status, string message)
    {
        Message = message;
        Response.StatusCode = status;
        return Page();
    }
}
