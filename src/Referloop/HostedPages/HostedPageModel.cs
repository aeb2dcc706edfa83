using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Storage;

namespace Referloop.HostedPages;

/// <summary>What every hosted page shares: its campaign, its language and texts, and the not-found answer.</summary>
public abstract class HostedPageModel : PageModel
{
    public PageText Text { get; private set; } = new(PageLanguage.English);

    public Campaign? Campaign { get; private set; }

    public PageSettings Settings => Campaign?.Page ?? new PageSettings();

    public string Title { get; protected set; } = "";

    /// <summary>What the advocate gets: the settings' text, else what the reward rules give.</summary>
    public IReadOnlyList<string> AdvocateOffers => Settings.AdvocateOffer is { } own ? [own]
        : Campaign is null ? [] : PageOffers.Advocate(Campaign, Text);

    /// <summary>What the invited friend gets: the settings' text, else what the reward rules give.</summary>
    public IReadOnlyList<string> FriendOffers => Settings.FriendOffer is { } own ? [own]
        : Campaign is null ? [] : PageOffers.Friend(Campaign, Text);

    /// <summary>Set when the page answers 404: the layout shows the not-found text instead of the page.</summary>
    public bool IsNotFound { get; private set; }

    /// <summary>The theme stylesheet of the campaign, versioned by its last change so a new colour shows at once.</summary>
    public string? ThemeUrl => Campaign is null ? null : $"/hosted/theme/{Campaign.Id}.css?v={Campaign.UpdatedAt.UtcTicks}";

    protected void Use(Campaign? campaign)
    {
        Campaign = campaign;
        Text = new PageText(PageLanguage.Choose(campaign?.Page?.Language, Request.Headers.AcceptLanguage));
        Response.Headers.Vary = "Accept-Language";
        Response.Headers.CacheControl = "no-store";
    }

    protected IActionResult NotFoundPage()
    {
        Use(Campaign);
        IsNotFound = true;
        Title = Text["NotFoundTitle"];
        Response.StatusCode = StatusCodes.Status404NotFound;
        return Page();
    }

    /// <summary>A campaign by its slug or id.</summary>
    protected static Task<Campaign?> FindCampaignAsync(ReferloopDb db, string key, CancellationToken ct) =>
        key.Length > 64 ? Task.FromResult<Campaign?>(null)
            : db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Slug == key || c.Id == key, ct);
}
