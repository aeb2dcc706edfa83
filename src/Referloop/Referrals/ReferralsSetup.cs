using Referloop.Tracking;

namespace Referloop.Referrals;

public static class ReferralsSetup
{
    /// <summary>The referral engine, its fraud screening, auto-approval and browser CORS. Approval listeners come from webhooks.</summary>
    public static IServiceCollection AddReferralEngine(this IServiceCollection services)
    {
        services.AddScoped<ReferralEngine>();
        services.AddScoped<ReferralStore>();
        services.AddSingleton<ReferralCore>();
        services.AddSingleton<EventIngest>();
        services.AddSingleton<EventInbox>();
        services.AddSingleton<ShareLinkVisits>();
        services.AddHostedService<EventInboxRecovery>();
        services.AddSingleton<IReferralScreening, FraudPolicyScreening>();
        services.AddSingleton<AutoApprovalService>();
        services.AddHostedService(provider => provider.GetRequiredService<AutoApprovalService>());
        services.AddCors(options => options.AddPolicy(EventsApi.BrowserPolicy, policy => policy
            .AllowAnyOrigin()
            .WithMethods("POST")
            .WithHeaders("Content-Type", EventsApi.KeyHeader, EventsApi.IdempotencyHeader)));
        return services;
    }
}
