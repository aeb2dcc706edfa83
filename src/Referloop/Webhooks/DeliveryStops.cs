using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Word between the instances on one PostgreSQL database that deliveries were stopped (messages cancelled, an endpoint
/// disabled or deleted, a person erased): each instance then drops what it holds of them at once
/// (<see cref="DeliveryEngine.DropStoppedHereAsync"/>), not at its next lease renewal (every quarter of
/// <c>Webhooks:ClaimLease</c>), before which it might have started one. The word is a <c>NOTIFY</c>, which reaches every
/// listening session; each instance listens on a connection of its own while it delivers. Word missed while that
/// connection is down is made up for by the next renewal, and by a drop as soon as it listens again. SQLite runs one
/// instance: there is nobody to tell.
/// </summary>
internal sealed class DeliveryStops(IServiceScopeFactory scopes, DeliveryEngine engine, IOptions<WebhookOptions> options,
    TimeProvider clock, ILogger<DeliveryStops> log) : BackgroundService
{
    /// <summary>The channel; the payload is the id of the instance that stopped the deliveries (it dropped its own).</summary>
    public const string Channel = "referloop_deliveries_stopped";

    private static readonly TimeSpan MostBetweenTries = TimeSpan.FromSeconds(30);

    // Word that came while a drop ran asks for one more after it; more word meanwhile asks for nothing more.
    private readonly Channel<bool> _asked = System.Threading.Channels.Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    /// <summary>Tells the other instances that deliveries were stopped; on SQLite nothing.</summary>
    public static async Task TellAsync(ReferloopDb db, string instanceId, CancellationToken ct)
    {
        if (!db.OnSqlite)
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_notify({Channel}, {instanceId})", ct);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? connectionString;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            if (db.OnSqlite || !options.Value.DeliveryEnabled)
            {
                return;
            }
            connectionString = db.Database.GetConnectionString();
        }
        var dropping = DropWhenAskedAsync(stoppingToken);
        var wait = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(connectionString!, () => wait = TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                log.LogWarning(e,
                    "Listening for stopped webhook deliveries failed; listening again in {Wait} (lease renewals drop them meanwhile)", wait);
                try
                {
                    await Task.Delay(wait, clock, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                }
                wait = wait * 2 < MostBetweenTries ? wait * 2 : MostBetweenTries;
            }
        }
        _asked.Writer.TryComplete();
        await dropping;
    }

    private async Task ListenAsync(string connectionString, Action listening, CancellationToken ct)
    {
        // Outside the pool, which would reset the session (and end the LISTEN) on return; keepalives notice a dead link.
        var settings = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 30 };
        await using var connection = new NpgsqlConnection(settings.ConnectionString);
        connection.Notification += (_, word) =>
        {
            if (word.Payload != engine.InstanceId)
            {
                _asked.Writer.TryWrite(true);
            }
        };
        await connection.OpenAsync(ct);
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
        {
            await listen.ExecuteNonQueryAsync(ct);
        }
        listening();
        // Word may have been missed while this connection was not listening.
        _asked.Writer.TryWrite(true);
        while (true)
        {
            await connection.WaitAsync(ct);
        }
    }

    private async Task DropWhenAskedAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var _ in _asked.Reader.ReadAllAsync(ct))
            {
                await engine.DropStoppedHereAsync();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
