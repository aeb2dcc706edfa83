using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Referloop.Http;

namespace Referloop.HostedPages;

/// <summary>What <c>/r/{code}</c> does for a friend: send them on to the landing URL, or show the invited page first.</summary>
public static class ShareLinkMode
{
    public const string Redirect = "redirect";
    public const string Page = "page";
    public static readonly string[] All = [Redirect, Page];
}

/// <summary>The languages the hosted pages are written in (<c>PageText.resx</c> and its translations).</summary>
public static class PageLanguage
{
    public const string English = "en";
    public const string German = "de";
    public static readonly string[] All = [English, German];

    /// <summary>
    /// The campaign's language when it names one, else the first supported language the browser asks for
    /// (<c>Accept-Language</c>, by quality), else English.
    /// </summary>
    public static string Choose(string? campaignLanguage, string? acceptLanguage)
    {
        if (campaignLanguage is not null && All.Contains(campaignLanguage))
        {
            return campaignLanguage;
        }
        var asked = (acceptLanguage ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select((entry, index) =>
            {
                var parts = entry.Split(';', StringSplitOptions.TrimEntries);
                var quality = 1.0;
                foreach (var parameter in parts.Skip(1))
                {
                    if (parameter.StartsWith("q=", StringComparison.OrdinalIgnoreCase)
                        && double.TryParse(parameter[2..], System.Globalization.NumberStyles.Float,
                            System.Globalization.CultureInfo.InvariantCulture, out var q))
                    {
                        quality = q;
                    }
                }
                return (Language: parts[0].Split('-')[0].ToLowerInvariant(), Quality: quality, Index: index);
            })
            .Where(a => a.Quality > 0)
            .OrderByDescending(a => a.Quality).ThenBy(a => a.Index);
        return asked.Select(a => a.Language).FirstOrDefault(All.Contains) ?? English;
    }
}

/// <summary>
/// A campaign's hosted pages (<c>page</c> in the campaign API): the texts and look of the page for the person referring
/// (<c>/join/{campaign}</c>), the page for the person invited and the advocate portal.
/// </summary>
public sealed partial record PageSettings
{
    /// <summary><c>redirect</c> (default): <c>/r/{code}</c> goes straight to the landing URL; <c>page</c>: the invited page first.</summary>
    [Values(typeof(ShareLinkMode))]
    public string ShareLink { get; init; } = ShareLinkMode.Redirect;

    /// <summary>The join page's heading; empty: the campaign's name.</summary>
    [StringLength(120)]
    public string? Headline { get; init; }

    [StringLength(1000)]
    public string? Description { get; init; }

    /// <summary>What an advocate earns, in the merchant's words ("$10 for every friend who buys").</summary>
    [StringLength(300)]
    public string? AdvocateOffer { get; init; }

    /// <summary>What the invited friend gets ("10% off your first order").</summary>
    [StringLength(300)]
    public string? FriendOffer { get; init; }

    /// <summary>The colour of buttons and the page's top bar, <c>#rrggbb</c>; text on it is black or white, whichever reads better.</summary>
    [RegularExpression(ColorRule)]
    public string? BrandColor { get; init; }

    [StringLength(2048)]
    public string? LogoUrl { get; init; }

    /// <summary>The merchant's terms of the programme, linked beside the consent box on the join page.</summary>
    [StringLength(2048)]
    public string? TermsUrl { get; init; }

    /// <summary><c>en</c> or <c>de</c>; empty: chosen by the visitor's browser (<c>Accept-Language</c>).</summary>
    [Values(typeof(PageLanguage))]
    public string? Language { get; init; }

    /// <summary>Shows the portal's leaderboard (first name, initial and count of referrals of the top advocates).</summary>
    public bool Leaderboard { get; init; }

    public const string ColorRule = "^#[0-9a-fA-F]{6}$";

    public const string DefaultBrandColor = "#1f5fbf";

    public void Validate(ValidationErrors errors, string path)
    {
        errors.OneOf($"{path}.shareLink", ShareLink, ShareLinkMode.All);
        errors.MaxLength($"{path}.headline", Headline, 120);
        errors.MaxLength($"{path}.description", Description, 1000);
        errors.MaxLength($"{path}.advocateOffer", AdvocateOffer, 300);
        errors.MaxLength($"{path}.friendOffer", FriendOffer, 300);
        if (BrandColor is not null && !ColorPattern().IsWholeMatch(BrandColor))
        {
            errors.Add($"{path}.brandColor", "must be a colour such as #1f5fbf (# and six hexadecimal digits).");
        }
        if (!string.IsNullOrEmpty(LogoUrl))
        {
            errors.HttpUrl($"{path}.logoUrl", LogoUrl);
        }
        if (!string.IsNullOrEmpty(TermsUrl))
        {
            errors.HttpUrl($"{path}.termsUrl", TermsUrl);
        }
        if (Language is not null)
        {
            errors.OneOf($"{path}.language", Language, PageLanguage.All);
        }
    }

    /// <summary>Blank texts become null, the colour lower case.</summary>
    public PageSettings Normalise() => this with
    {
        Headline = Blank(Headline),
        Description = Blank(Description),
        AdvocateOffer = Blank(AdvocateOffer),
        FriendOffer = Blank(FriendOffer),
        BrandColor = Blank(BrandColor)?.ToLowerInvariant(),
        LogoUrl = Blank(LogoUrl),
        TermsUrl = Blank(TermsUrl),
        Language = Blank(Language),
    };

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    [GeneratedRegex(ColorRule)]
    private static partial Regex ColorPattern();
}
