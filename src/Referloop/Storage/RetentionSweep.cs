using Microsoft.EntityFrameworkCore;
using Referloop.Webhooks;

namespace Referloop.Storage;

/// <summary>
/// Removes raw personal data once it has served its purpose, every <c>Retention:SweepIntervalMinutes</c> (60): raw
/// inbound requests older than <c>InboundHooks:RetentionDays</c> (30), and the bodies of outbound messages whose
/// deliveries all ended longer ago than <c>Webhooks:DeliveredBodyRetentionDays</c> (30). 0 keeps them forever.
/// </summary>
internal sealed class RetentionSweep(IServiceScopeFactory scopes, TimeProvider clock, IConfiguration configuration,
    ILogger<RetentionSweep> logger) : BackgroundService
{
    /// <summary>What an emptied message body holds: still a JSON object, so every reader of <c>data</c> keeps working.</summary>
    public const string PurgedData = "{}";

    public int InboundRetentionDays => Math.Max(0, configuration.GetValue("InboundHooks:RetentionDays", 30));

    public int DeliveredBodyRetentionDays => Math.Max(0, configuration.GetValue("Webhooks:DeliveredBodyRetentionDays", 30));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (SweepInterval.Read(configuration, "Retention:SweepIntervalMinutes") is not { } interval)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, clock, stoppingToken);
                await PurgeAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogError(exception, "Purging expired inbound requests and message bodies failed; trying again in {Interval}.", interval);
            }
        }
    }

    /// <summary>Purges what has expired; returns how many inbound requests were deleted and message bodies emptied.</summary>
    public async Task<(int InboundRequests, int MessageBodies)> PurgeAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var now = clock.GetUtcNow();
        var requests = 0;
        if (InboundRetentionDays > 0)
        {
            var cutoff = now - TimeSpan.FromDays(InboundRetentionDays);
            requests = await db.InboundRequests.Where(r => r.ReceivedAt < cutoff).ExecuteDeleteAsync(ct);
        }
        var bodies = 0;
        if (DeliveredBodyRetentionDays > 0)
        {
            var cutoff = now - TimeSpan.FromDays(DeliveredBodyRetentionDays);
            // Dispatched, old enough, and no delivery still pending or ended recently: a failure can be replayed for
            // as long as the body is kept. Not by DataPurgedAt: an erasure sets it too, leaving the other people named.
            bodies = await db.Outbox
                .Where(m => m.DispatchedAt != null && m.Data != PurgedData && m.CreatedAt < cutoff
                    && !db.WebhookDeliveries.Any(d => d.MessageId == m.Id
                        && (d.Status == DeliveryStatus.Pending || d.CompletedAt == null || d.CompletedAt >= cutoff)))
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.Data, PurgedData).SetProperty(m => m.DataPurgedAt, now), ct);
        }
        if (requests > 0 || bodies > 0)
        {
            logger.LogInformation("Retention: deleted {Requests} raw inbound requests, emptied {Bodies} message bodies.", requests, bodies);
        }
        return (requests, bodies);
    }
}

public static class RetentionSetup
{
    public static IServiceCollection AddRetentionSweep(this IServiceCollection services)
    {
        services.AddSingleton<RetentionSweep>();
        services.AddHostedService(provider => provider.GetRequiredService<RetentionSweep>());
        return services;
    }
}

/// <summary>How often a background sweep runs: <c>…:SweepIntervalMinutes</c>, 60 when unset, 0 for never.</summary>
internal static class SweepInterval
{
    /// <summary>The longest wait a timer takes (about 49 days) rounded down: a longer setting sweeps every 30 days.</summary>
    private const int MostMinutes = 30 * 24 * 60;

    /// <summary>The interval, or null when the setting turns the sweep off.</summary>
    public static TimeSpan? Read(IConfiguration configuration, string key) =>
        configuration.GetValue(key, 60) is var minutes and > 0 ? TimeSpan.FromMinutes(Math.Min(minutes, MostMinutes)) : null;
}
