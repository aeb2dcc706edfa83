using Referloop.Tracking;

namespace Referloop.Referrals;

public static class ReferralsSetup
{
    /// <summary>The referral engine, its seams (fraud screening, approval listeners), auto-approval and browser CORS.</summary>
    public static IServiceCollection AddReferralEngine(this IServiceCollection services)
    {
        services.AddScoped<ReferralEngine>();
        services.AddSingleton<IngestionGate>();
        services.AddSingleton<IReferralScreening, FraudPolicyScreening>();
        services.AddSingleton<IReferralApprovalListeners, NoReferralApprovalListeners>();
        services.AddSingleton<AutoApprovalService>();
        services.AddHostedService(provider => provider.GetRequiredService<AutoApprovalService>());
        services.AddCors(options => options.AddPolicy(EventsApi.BrowserPolicy, policy => policy
            .AllowAnyOrigin()
            .WithMethods("POST")
            .WithHeaders("Content-Type", EventsApi.KeyHeader, EventsApi.IdempotencyHeader)));
        return services;
    }
}
