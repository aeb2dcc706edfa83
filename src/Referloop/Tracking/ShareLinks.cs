using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Referloop.Http;

namespace Referloop.Tracking;

/// <summary><c>GET /r/{code}</c>: record the click, remember it in a cookie and send the friend to the landing page.</summary>
internal static class ShareLinks
{
    public const string ClickCookie = "rl_click";

    /// <summary>Added to the landing URL beside <c>ref</c>, so a snippet on another domain can still report the click.</summary>
    public const string ClickParameter = "rl_click";

    /// <summary>Follows of one link from one address within this window are one click: a reload is not a new friend.</summary>
    public static readonly TimeSpan RepeatWindow = TimeSpan.FromMinutes(10);

    public static IEndpointRouteBuilder MapShareLinks(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/r/{code}", Follow)
            .WithTags("Share links")
            .WithName("FollowShareLink")
            .WithSummary("Follow an advocate's share link: 302 to the campaign's landing URL with ref=<code>, or to its invited page")
            .WithDescription("Records one click per link, address and 10 minutes; rate-limited per address. When the campaign's " +
                "page.shareLink is 'page', the 302 goes to the invited page /r/{code}/join?rl_click=<click id> instead.")
            .RequireRateLimiting(PublicLimits.ShareLinks)
            .Produces(StatusCodes.Status302Found)
            .Produces<string>(StatusCodes.Status404NotFound, "text/html")
            // The handler's type says 200 for its not-found page; it never answers 200.
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                operation.Responses?.Remove("200");
                return Task.CompletedTask;
            });
        return routes;
    }

    private static async Task<Results<RedirectHttpResult, ContentHttpResult>> Follow(string code, HttpContext http,
        ShareLinkVisits visits, TimeProvider clock, IConfiguration configuration)
    {
        http.Response.Headers.CacheControl = "no-store";
        var link = code.Length > 32 ? null : await visits.FollowAsync(new Visit(code, http.Connection.RemoteIpAddress?.ToString(),
            Truncate(http.Request.Headers.UserAgent.ToString(), 512), Truncate(http.Request.Headers.Referer.ToString(), 2048)));
        if (link is null)
        {
            return TypedResults.Content(NotFoundPage, "text/html; charset=utf-8", statusCode: StatusCodes.Status404NotFound);
        }
        if (link.ClickId is not { } clickId)
        {
            // The campaign is not active: the friend still lands somewhere useful; only the attribution is withheld.
            return TypedResults.Redirect(link.LandingUrl);
        }

        var now = clock.GetUtcNow();
        http.Response.Cookies.Append(ClickCookie, clickId, new CookieOptions
        {
            Expires = now.AddDays(link.AttributionWindowDays),
            HttpOnly = false, // the shop's snippet reads it when Referloop shares the shop's site
            Secure = http.Request.IsHttps,
            SameSite = SameSiteMode.Lax,
            Domain = configuration["Tracking:CookieDomain"],
            Path = "/",
            IsEssential = true,
        });

        if (link.Page?.ShareLink == HostedPages.ShareLinkMode.Page)
        {
            // The campaign shows the invited page first; it sends the friend on to LandingTarget when done.
            return TypedResults.Redirect(QueryHelpers.AddQueryString($"/r/{Uri.EscapeDataString(code)}/join", ClickParameter, clickId));
        }
        return TypedResults.Redirect(LandingTarget(link.LandingUrl, code, clickId));
    }

    /// <summary>Where a followed link lands: the landing URL with <c>ref</c> and the click id.</summary>
    public static string LandingTarget(string landingUrl, string code, string? clickId) =>
        QueryHelpers.AddQueryString(landingUrl, new Dictionary<string, string?>
        {
            ["ref"] = code,
            [ClickParameter] = clickId,
        });

    private static string? Truncate(string value, int max) =>
        string.IsNullOrEmpty(value) ? null : value.Length <= max ? value : value[..max];

    private const string NotFoundPage = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Link not found</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head>
        <body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem; color: #222">
        <h1>This referral link does not exist</h1>
        <p>Check that the link was copied completely, or ask the person who shared it for a new one.</p>
        </body></html>
        """;
}
