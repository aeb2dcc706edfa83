using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.SocialProof;

/// <summary>
/// Answers CORS for the feed per the campaign in its route: the campaign's <c>socialProof.allowedOrigins</c>, or the
/// server's <c>SocialProof:AllowedOrigins</c> when it sets none. Every other policy is the named one from
/// <see cref="CorsOptions"/>, as the default provider would give.
/// </summary>
internal sealed class SocialProofCorsPolicyProvider(IOptions<CorsOptions> options, IConfiguration configuration) : ICorsPolicyProvider
{
    private readonly string[] _defaults = [.. SocialProofSettings.Normalise(
        configuration.GetSection("SocialProof:AllowedOrigins").Get<string[]>() ?? [])];

    public async Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName)
    {
        if (policyName != SocialProofApi.CorsPolicy)
        {
            return options.Value.GetPolicy(policyName ?? options.Value.DefaultPolicyName);
        }
        var origins = _defaults;
        if (context.GetRouteValue("id") is string campaignId)
        {
            var db = context.RequestServices.GetRequiredService<ReferloopDb>();
            var settings = await db.Campaigns.AsNoTracking().Where(c => c.Id == campaignId)
                .Select(c => c.SocialProof).FirstOrDefaultAsync(context.RequestAborted);
            if (settings is { AllowedOrigins.Count: > 0 })
            {
                origins = [.. settings.AllowedOrigins];
            }
        }
        return Policy(origins);
    }

    private static CorsPolicy Policy(string[] origins)
    {
        var policy = new CorsPolicyBuilder().WithMethods("GET").WithHeaders(SocialProofApi.KeyHeader);
        return (origins.Contains("*") ? policy.AllowAnyOrigin() : policy.WithOrigins(origins)).Build();
    }
}
