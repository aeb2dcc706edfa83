using System.Threading.RateLimiting;
using Referloop.SocialProof;

namespace Referloop.InboundHooks;

/// <summary>Services of inbound hooks and social proof: the per-token rate limit, GeoIP, the widget's CORS policy.</summary>
public static class InboundHooksSetup
{
    public const string RateLimitPolicy = "inbound-hooks";

    public static IServiceCollection AddInboundHooks(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<DbIpGeoIp>();
        services.AddSingleton<IGeoIp>(provider => provider.GetRequiredService<DbIpGeoIp>());
        services.AddHealthChecks().AddCheck<GeoIpHealthCheck>("geoip", tags: ["ready"]);
        services.AddHostedService<GeoIpWarmup>();
        services.AddScoped<StreamEnricher>();
        services.AddScoped<IInboundEventSink, EngineEventSink>();

        var permits = configuration.GetValue("InboundHooks:RateLimit:Permits", 120);
        var window = TimeSpan.FromSeconds(configuration.GetValue("InboundHooks:RateLimit:WindowSeconds", 60));
        services.AddRateLimiter(options =>
        {
            // One budget per token: a noisy sender slows itself down, not the other hooks.
            options.AddPolicy(RateLimitPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                http.Request.RouteValues["token"]?.ToString() ?? "",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = window, QueueLimit = 0 }));
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = async (context, ct) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                var problems = context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests.",
                        Detail = "This URL receives too many requests; slow down and retry after the time in Retry-After.",
                    },
                });
            };
        });

        var origins = configuration.GetSection("SocialProof:AllowedOrigins").Get<string[]>() ?? [];
        services.AddCors(options => options.AddPolicy(SocialProofApi.CorsPolicy, policy =>
        {
            if (origins.Contains("*"))
            {
                policy.AllowAnyOrigin();
            }
            else
            {
                policy.WithOrigins([.. origins.Select(o => o.TrimEnd('/'))]);
            }
            policy.WithMethods("GET").WithHeaders(SocialProofApi.KeyHeader);
        }));
        return services;
    }
}
