using Microsoft.AspNetCore.Cors.Infrastructure;
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

        // The feed's CORS depends on the campaign read, so a provider answers it per request.
        services.AddCors();
        services.AddSingleton<ICorsPolicyProvider, SocialProofCorsPolicyProvider>();
        return services;
    }
}
