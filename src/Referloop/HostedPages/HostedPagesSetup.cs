using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using QRCoder;
using Referloop.Http;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.HostedPages;

public sealed record PortalLinkResponse(string ParticipantId, string PortalUrl);

/// <summary>
/// The public pages of a campaign: the join page (<c>/join/{campaign}</c>), the invited page (<c>/r/{code}/join</c>)
/// and the advocate portal (<c>/p/{token}</c>), server-rendered Razor Pages in this folder, plus their theme, the
/// portal's QR code and the API that issues and revokes portal links.
/// </summary>
public static class HostedPagesSetup
{
    /// <summary>Set by a page that posts a form onwards to another site (the invited page's landing URL).</summary>
    internal const string FormTargetItem = "referloop.hosted.form-target";

    public static IServiceCollection AddHostedPages(this IServiceCollection services) => services;

    public static bool IsHostedPath(PathString path) =>
        path.StartsWithSegments("/join") || path.StartsWithSegments("/p") || path.StartsWithSegments("/hosted")
        || path.StartsWithSegments("/unsubscribe")
        || (path.StartsWithSegments("/r") && path.Value!.EndsWith("/join", StringComparison.Ordinal));

    /// <summary>
    /// The hosted pages load their script, styles and QR code from Referloop only; images (the merchant's logo) may
    /// come from any https origin. No inline script or style: the brand colour comes from the theme stylesheet.
    /// </summary>
    public static string ContentSecurityPolicy(string? formTarget) =>
        "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'self'; object-src 'none'; " +
        $"form-action 'self'{(formTarget is null ? "" : " " + formTarget)}";

    public static IApplicationBuilder UseHostedPageHeaders(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        if (IsHostedPath(context.Request.Path))
        {
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy(context.Items[FormTargetItem] as string);
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                // The portal's URL is its secret: no page it links to may learn it.
                headers["Referrer-Policy"] = "no-referrer";
                return Task.CompletedTask;
            });
        }
        return next(context);
    });

    public static IEndpointRouteBuilder MapHostedPages(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/hosted/theme/{campaignId}.css", Theme).ExcludeFromDescription();
        routes.MapGet("/p/{token}/qr.svg", Qr).ExcludeFromDescription();

        var portalLinks = routes.MapGroup("/api/v1/campaigns/{campaignId}/participants/{id}/portal-link")
            .WithTags("Participants")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();
        portalLinks.MapPost("/", IssuePortalLink).WithName("IssuePortalLink")
            .WithSummary("Issue a new portal link for a participant; the link issued before stops working")
            .WithDescription("The link (/p/{token}) is shown only in this answer: Referloop keeps a hash of its token.");
        portalLinks.MapDelete("/", RevokePortalLink).WithName("RevokePortalLink")
            .WithSummary("Revoke a participant's portal link");
        return routes;
    }

    private static async Task<Results<ContentHttpResult, NotFound>> Theme(string campaignId, HttpContext http, ReferloopDb db,
        CancellationToken ct)
    {
        var page = await db.Campaigns.AsNoTracking().Where(c => c.Id == campaignId).Select(c => new { c.Page }).FirstOrDefaultAsync(ct);
        if (page is null)
        {
            return TypedResults.NotFound();
        }
        http.Response.Headers.CacheControl = "public, max-age=86400";
        return TypedResults.Content(Brand.Stylesheet(page.Page?.BrandColor), "text/css; charset=utf-8");
    }

    private static async Task<Results<ContentHttpResult, NotFound>> Qr(string token, HttpContext http, ReferloopDb db,
        PublicUrls urls, CancellationToken ct)
    {
        var advocate = await PortalTokens.FindAsync(db, token, ct);
        if (advocate is null)
        {
            return TypedResults.NotFound();
        }
        http.Response.Headers.CacheControl = "private, no-store";
        return TypedResults.Content(QrSvg(urls.ShareUrl(advocate.Code)), "image/svg+xml; charset=utf-8");
    }

    /// <summary>The QR code of <paramref name="text"/> as SVG, 8 units a module, with its quiet zone.</summary>
    public static string QrSvg(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.M);
        using var svg = new SvgQRCode(data);
        return svg.GetGraphic(8, "#000000", "#ffffff", true, SvgQRCode.SizingMode.ViewBoxAttribute);
    }

    private static async Task<Results<Ok<PortalLinkResponse>, ProblemHttpResult>> IssuePortalLink(string campaignId, string id,
        ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct) =>
        await PortalTokens.IssueAsync(db, campaignId, id, clock.GetUtcNow(), ct) is { } token
            ? TypedResults.Ok(new PortalLinkResponse(id, urls.PortalUrl(token)))
            : Problems.NotFound("participant", id);

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokePortalLink(string campaignId, string id, ReferloopDb db,
        TimeProvider clock, CancellationToken ct) =>
        await PortalTokens.RevokeAsync(db, campaignId, id, clock.GetUtcNow(), ct)
            ? TypedResults.NoContent()
            : Problems.NotFound("participant", id);
}

/// <summary>Portal tokens: 256 random bits, kept only as a SHA-256 hash, so a copy of the database opens no portal.</summary>
public static class PortalTokens
{
    public const string Prefix = "pt";

    public static string New() => Secrets.NewToken(Prefix);

    /// <summary>
    /// A new token for the participant, replacing the one before and the one last mailed; null when the campaign has no
    /// such participant.
    /// </summary>
    public static async Task<string?> IssueAsync(ReferloopDb db, string campaignId, string participantId, DateTimeOffset now,
        CancellationToken ct)
    {
        var token = New();
        var updated = await db.Participants.Where(p => p.Id == participantId && p.CampaignId == campaignId)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.PortalTokenHash, Secrets.Hash(token))
                .SetProperty(p => p.MailPortalTokenHash, (string?)null).SetProperty(p => p.UpdatedAt, now), ct);
        return updated == 0 ? null : token;
    }

    /// <summary>Closes the participant's portal (issued and mailed links) until a new link is issued; false when the campaign has no such participant.</summary>
    public static async Task<bool> RevokeAsync(ReferloopDb db, string campaignId, string participantId, DateTimeOffset now,
        CancellationToken ct) =>
        await db.Participants.Where(p => p.Id == participantId && p.CampaignId == campaignId)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.PortalTokenHash, (string?)null)
                .SetProperty(p => p.MailPortalTokenHash, (string?)null).SetProperty(p => p.UpdatedAt, now), ct) > 0;

    public static async Task<Participants.Participant?> FindAsync(ReferloopDb db, string token, CancellationToken ct)
    {
        if (token.Length is < 10 or > 100 || !token.StartsWith(Prefix + "_", StringComparison.Ordinal))
        {
            return null;
        }
        var hash = Secrets.Hash(token);
        return await db.Participants.AsNoTracking().Include(p => p.Campaign)
            .FirstOrDefaultAsync(p => (p.PortalTokenHash == hash || p.MailPortalTokenHash == hash) && p.IsReferrer, ct);
    }
}

/// <summary>The brand colour and the colours that read on it (WCAG 2.1 contrast).</summary>
public static class Brand
{
    private const string Dark = "#1d2433";

    public static string Color(string? brandColor) => brandColor ?? PageSettings.DefaultBrandColor;

    /// <summary>Text on the brand colour: white or black, whichever contrasts more (at least 4.58:1 for any colour).</summary>
    public static string Ink(string? brandColor) =>
        Contrast(Color(brandColor), "#ffffff") >= Contrast(Color(brandColor), "#000000") ? "#ffffff" : "#000000";

    /// <summary>Links on the white page: the brand colour when it reads (4.5:1), else the page's dark text colour.</summary>
    public static string Link(string? brandColor) => Contrast(Color(brandColor), "#ffffff") >= 4.5 ? Color(brandColor) : Dark;

    public static string Stylesheet(string? brandColor) =>
        $":root {{ --brand: {Color(brandColor)}; --brand-ink: {Ink(brandColor)}; --brand-link: {Link(brandColor)}; }}\n";

    public static double Contrast(string a, string b)
    {
        var (la, lb) = (Luminance(a), Luminance(b));
        return (Math.Max(la, lb) + 0.05) / (Math.Min(la, lb) + 0.05);
    }

    private static double Luminance(string hex)
    {
        double Channel(int offset)
        {
            var value = int.Parse(hex.AsSpan(1 + offset, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture) / 255.0;
            return value <= 0.03928 ? value / 12.92 : Math.Pow((value + 0.055) / 1.055, 2.4);
        }
        return 0.2126 * Channel(0) + 0.7152 * Channel(2) + 0.0722 * Channel(4);
    }
}
