using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Referloop.Http;
using Referloop.Storage;

namespace Referloop.Dashboard;

// The one form anyone can post: an API key fits many times over.
[RequestSizeLimit(16 * 1024)]
public sealed class SignInModel(ReferloopDb db, PublicLimits limits) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnPostAsync(string? key)
    {
        if (limits.SignInRefused(HttpContext))
        {
            Error = "Too many failed sign-ins from this address; try again in a minute.";
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        if (string.IsNullOrWhiteSpace(key) || key.Length > 200 || !await DashboardSetup.SignInAsync(HttpContext, db, key))
        {
            limits.SignInFailed(HttpContext);
            Error = "That key is not an active admin key of scope full (read-only and events-only keys are for the API).";
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Page();
        }
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) && ReturnUrl!.StartsWith("/admin", StringComparison.Ordinal) ? ReturnUrl : "/admin");
    }
}

public sealed class SignOutModel : PageModel
{
    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.SignOutAsync(DashboardSetup.Scheme);
        return Redirect("/admin/sign-in");
    }

    public IActionResult OnGet() => Redirect("/admin");
}
