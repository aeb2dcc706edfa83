using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Outbound;
using Referloop.Referrals;
using Referloop.Storage;

namespace Referloop.Webhooks;

public static class WebhooksSetup
{
    public static IServiceCollection AddWebhooks(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<WebhookOptions>(configuration.GetSection("Webhooks"));
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<OutboxWriter>();
        services.AddSingleton<WebhookKeys>();
        services.AddSingleton<DeliveryRecorder>();
        services.AddSingleton<DeliverySender>();
        services.AddSingleton<DeliveryEngine>();
        services.AddHostedService(sp => sp.GetRequiredService<DeliveryEngine>());
        services.AddHostedService<DeliveryStops>();
        services.AddSingleton<ReferralApprovalWebhooks>();
        services.AddSingleton<IReferralApprovalListeners>(sp => sp.GetRequiredService<ReferralApprovalWebhooks>());
        services.AddSingleton<IAcknowledgementHandler>(sp => sp.GetRequiredService<ReferralApprovalWebhooks>());

        services.AddGuardedHttpClient(DeliverySender.ClientName,
                // The sender bounds each attempt itself; this is only a backstop.
                (sp, client) => client.Timeout = sp.GetRequiredService<IOptions<WebhookOptions>>().Value.Timeout + TimeSpan.FromSeconds(5),
                (sp, handler) =>
                {
                    handler.ConnectTimeout = sp.GetRequiredService<IOptions<WebhookOptions>>().Value.Timeout;
                    handler.PooledConnectionLifetime = TimeSpan.FromMinutes(1);
                })
            // Each attempt is recorded in the delivery log; a log line per request would only repeat it.
            .RemoveAllLoggers();
        return services;
    }
}
