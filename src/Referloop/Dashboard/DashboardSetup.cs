using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Analytics;
using Referloop.Participants;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Dashboard;

/// <summary>
/// The admin dashboard: server-rendered Razor Pages under <c>/admin</c>, signed in with an admin API key that is
/// exchanged for a cookie. The cookie is re-checked against the key table, so revoking the key signs the browser out.
/// </summary>
public static class DashboardSetup
{
    public const string Scheme = "Dashboard";
    public const string Policy = "dashboard";

    /// <summary>
    /// The pages load their script and styles from <c>/admin/</c> and nothing else: no inline script, style or
    /// event handler, no frames, forms that post only to Referloop.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

    /// <summary>
    /// The policy of a page that previews a merchant's HTML mail in a sandboxed <c>srcdoc</c> frame, which inherits
    /// the page's policy: the dashboard's own policy, where mails may also be styled inline and show https images.
    /// Scripts stay the dashboard's own, and the frame's sandbox runs none.
    /// </summary>
    public const string MailPreviewPolicy =
        ContentSecurityPolicy + "; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:";

    /// <summary>Set by a page that shows a mail preview frame, for <see cref="MailPreviewPolicy"/>.</summary>
    internal const string MailPreviewItem = "referloop.dashboard.mail-preview";

    public static IServiceCollection AddDashboard(this IServiceCollection services, IHostEnvironment environment)
    {
        // Pages live in their feature folders (Dashboard/, HostedPages/), each with its own layout; only the
        // dashboard's need the admin cookie.
        services.AddRazorPages(options =>
        {
            options.RootDirectory = "/";
            options.Conventions.AuthorizeFolder("/Dashboard", Policy);
            options.Conventions.AllowAnonymousToPage("/Dashboard/SignIn");
            options.Conventions.AddPageRoute("/Dashboard/Campaigns/Edit", "/admin/campaigns/new");
        });
        services.Configure<Microsoft.AspNetCore.Mvc.Razor.RazorViewEngineOptions>(options =>
            options.PageViewLocationFormats.Add("/Dashboard/Shared/{0}.cshtml"));
        services.AddScoped<CampaignAnalytics>();
        services.AddAuthentication()
            .AddCookie(Scheme, options =>
            {
                options.Cookie.Name = "referloop_admin";
                options.Cookie.HttpOnly = true;
                options.Cookie.SameSite = SameSiteMode.Strict;
                // Over plain http only on a developer's machine; a proxy that ends TLS must not make it go out unmarked.
                options.Cookie.SecurePolicy = environment.IsDevelopment() ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
                options.LoginPath = "/admin/sign-in";
                options.LogoutPath = "/admin/sign-out";
                options.AccessDeniedPath = "/admin/sign-in";
                options.ExpireTimeSpan = TimeSpan.FromHours(12);
                options.SlidingExpiration = true;
                options.Events.OnValidatePrincipal = ValidateKeyStillActive;
            });
        services.AddAuthorizationBuilder()
            .AddPolicy(Policy, policy => policy.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser());
        return services;
    }

    private static async Task ValidateKeyStillActive(CookieValidatePrincipalContext context)
    {
        var keyId = context.Principal?.FindFirstValue(ClaimTypes.NameIdentifier);
        var db = context.HttpContext.RequestServices.GetRequiredService<ReferloopDb>();
        var active = keyId is not null && await db.ApiKeys.AsNoTracking()
            .AnyAsync(k => k.Id == keyId && k.RevokedAt == null && k.Scope == ApiKeyScope.Full, context.HttpContext.RequestAborted);
        if (!active)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
        }
    }

    /// <summary>
    /// Signs the browser in when <paramref name="key"/> is an active admin key of scope <c>full</c>: the dashboard
    /// changes everything it shows, so a narrower key has no place in it.
    /// </summary>
    public static async Task<bool> SignInAsync(HttpContext http, ReferloopDb db, string key)
    {
        var hash = Secrets.Hash(key.Trim());
        var apiKey = await db.ApiKeys.AsNoTracking()
            .FirstOrDefaultAsync(k => k.Hash == hash && k.RevokedAt == null && k.Scope == ApiKeyScope.Full, http.RequestAborted);
        if (apiKey is null)
        {
            return false;
        }
        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.NameIdentifier, apiKey.Id), new Claim(ClaimTypes.Name, apiKey.Name)], Scheme);
        await http.SignInAsync(Scheme, new ClaimsPrincipal(identity));
        return true;
    }

    /// <summary>Every answer under <c>/admin</c> carries the dashboard's content security policy and its companions.</summary>
    public static IApplicationBuilder UseDashboardHeaders(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        if (context.Request.Path.StartsWithSegments("/admin"))
        {
            // When the answer starts: an error page replacing the response clears what was set before.
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = context.Items.ContainsKey(MailPreviewItem) ? MailPreviewPolicy : ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "same-origin";
                return Task.CompletedTask;
            });
        }
        return next(context);
    });

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder routes)
    {
        routes.MapRazorPages();
        // The API's own export, behind the dashboard's cookie instead of a bearer key.
        routes.MapGet("/admin/campaigns/{campaignId}/participants/{id}/export.json", ParticipantsApi.Export)
            .RequireAuthorization(Policy)
            .ExcludeFromDescription();
        return routes;
    }
}
