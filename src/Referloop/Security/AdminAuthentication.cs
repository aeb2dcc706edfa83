using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.Security;

/// <summary>
/// <c>Authorization: Bearer &lt;admin key&gt;</c>. A key's validity is cached for a few seconds, so the hot paths
/// do not read the key table on every request; revoking on this instance takes effect at once, on other
/// instances within <see cref="CacheFor"/>.
/// </summary>
public sealed class AdminAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ReferloopDb db,
    IMemoryCache cache,
    IProblemDetailsService problems) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "AdminKey";
    public const string Policy = "admin";
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    public static string CacheKey(string hash) => $"apikey:{hash}";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }
        var token = header["Bearer ".Length..].Trim();
        if (token.Length is 0 or > 200)
        {
            return AuthenticateResult.Fail("Malformed bearer token.");
        }

        var hash = Secrets.Hash(token);
        var key = await cache.GetOrCreateAsync(CacheKey(hash), async entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = CacheFor;
            return await db.ApiKeys.AsNoTracking()
                .Where(k => k.Hash == hash && k.RevokedAt == null)
                .Select(k => new KnownKey(k.Id, k.Scope))
                .FirstOrDefaultAsync(Context.RequestAborted);
        });
        if (key is null)
        {
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        }

        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.NameIdentifier, key.Id), new Claim(ApiKeyScope.ClaimType, key.Scope)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private sealed record KnownKey(string Id, string Scope);

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = "An admin API key is required.",
                Detail = "Send 'Authorization: Bearer <key>' with a key that exists and is not revoked.",
            },
        });
    }
}
