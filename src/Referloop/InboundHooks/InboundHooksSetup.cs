using Referloop.SocialProof;

namespace Referloop.InboundHooks;

/// <summary>Services of inbound hooks and social proof: GeoIP, enrichment, the widget's CORS policy.</summary>
public static class InboundHooksSetup
{
    public static IServiceCollection AddInboundHooks(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<DbIpGeoIp>();
        services.AddSingleton<IGeoIp>(provider => provider.GetRequiredService<DbIpGeoIp>());
        services.AddHealthChecks().AddCheck<GeoIpHealthCheck>("geoip", tags: ["ready"]);
        services.AddHostedService<GeoIpWarmup>();
        services.AddScoped<StreamEnricher>();
        services.AddScoped<IInboundEventSink, EngineEventSink>();

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
