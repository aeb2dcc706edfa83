using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// The delivery loop of one server instance:
/// <list type="number">
/// <item>fan-out: undispatched outbox messages become one delivery per subscribed endpoint, and are marked
/// dispatched in the same transaction, so a crash at any point leaves either both or neither;</item>
/// <item>claim: due deliveries are leased to this instance (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, so
/// instances never take the same row; a dead instance's lease simply runs out);</item>
/// <item>send: each claimed delivery is attempted within the overall and per-endpoint bounds.</item>
/// </list>
/// It sleeps until a local write pokes <see cref="OutboxSignal"/> or the poll interval passes; due-ness is always
/// judged by the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class DeliveryEngine(IServiceScopeFactory scopes, DeliverySender sender, OutboxSignal signal, DeliveryWriteLock writes,
    TimeProvider clock, IOptions<WebhookOptions> options, ILogger<DeliveryEngine> log) : BackgroundService
{
    private readonly WebhookOptions _options = options.Value;
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.Value.MaxConcurrency));
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();
    private long _attempts;

    public string InstanceId { get; } = options.Value.InstanceId
        ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Deliveries this instance has attempted since it started.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.DeliveryEnabled)
        {
            return;
        }
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            var moreWork = false;
            try
            {
                moreWork |= await FanOutAsync(stoppingToken) >= _options.FanOutBatchSize;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogWarning(e, "Webhook fan-out failed; trying again shortly");
            }
            catch (Exception)
            {
                // Stopping: a statement cut short by shutdown (Npgsql reports it as a PostgresException) is not an error.
                break;
            }
            try
            {
                // Independent of the fan-out: a failing batch must not stop retries of what is already queued.
                moreWork |= await ClaimAndStartAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogWarning(e, "Claiming webhook deliveries failed; trying again shortly");
            }
            catch (Exception)
            {
                break;
            }
            if (!moreWork)
            {
                try
                {
                    await signal.WaitAsync(_options.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        try
        {
            await Task.WhenAll(_inFlight.Values);
        }
        catch (Exception e)
        {
            // Stopping: unfinished attempts are recorded by nobody and simply made again.
            log.LogDebug(e, "Webhook attempts cut short by shutdown will be made again");
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            // Hand back what this instance held so that another one (or the next start) need not wait for the lease.
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            await db.WebhookDeliveries.Where(d => d.ClaimedBy == InstanceId).ExecuteUpdateAsync(s => s
                .SetProperty(d => d.ClaimedBy, (string?)null)
                .SetProperty(d => d.ClaimedUntil, (DateTimeOffset?)null), cancellationToken);
        }
        catch (Exception e)
        {
            log.LogDebug(e, "Could not release webhook claims on shutdown; their leases will expire");
        }
    }

    /// <summary>Turns one batch of outbox messages into deliveries; returns how many messages it dispatched.</summary>
    internal async Task<int> FanOutAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // Cheap look first, so an idle instance does not take SQLite's write lock on every poll.
        if (!await db.Outbox.AnyAsync(m => m.DispatchedAt == null, ct))
        {
            return 0;
        }
        using var turn = await writes.TakeAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var size = _options.FanOutBatchSize;
        var batch = db.Database.IsNpgsql()
            ? await db.Outbox.FromSql($"""
                SELECT * FROM outbox WHERE "DispatchedAt" IS NULL ORDER BY "Id" LIMIT {size} FOR UPDATE SKIP LOCKED
                """).ToListAsync(ct)
            : await db.Outbox.Where(m => m.DispatchedAt == null).OrderBy(m => m.Id).Take(size).ToListAsync(ct);
        if (batch.Count == 0)
        {
            return 0;
        }
        var endpoints = await db.WebhookEndpoints.AsNoTracking().Where(e => e.Enabled).ToListAsync(ct);
        var now = clock.GetUtcNow();
        foreach (var message in batch)
        {
            foreach (var endpoint in endpoints.Where(e => e.Wants(message)))
            {
                db.WebhookDeliveries.Add(new WebhookDelivery
                {
                    Id = Ids.New("dlv"),
                    MessageId = message.Id,
                    EndpointId = endpoint.Id,
                    Status = DeliveryStatus.Pending,
                    NextAttemptAt = now,
                    CreatedAt = now,
                    UpdatedAt = now,
                });
            }
            message.DispatchedAt = now;
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return batch.Count;
    }

    /// <summary>Claims as many due deliveries as there are free slots and starts them; true when slots ran out.</summary>
    private async Task<bool> ClaimAndStartAsync(CancellationToken ct)
    {
        var free = _slots.CurrentCount;
        if (free == 0)
        {
            return false;
        }
        List<string> claimed;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            using var turn = await writes.TakeAsync(ct);
            claimed = await ClaimAsync(db, InstanceId, clock.GetUtcNow(), _options.ClaimLease, free,
                _options.MaxConcurrencyPerEndpoint, ct);
        }
        var started = 0;
        foreach (var id in claimed)
        {
            // A lease that ran out while this instance was still sending it (a long wait, or a test's clock jump)
            // comes back to its holder: it is already in hand.
            if (_inFlight.ContainsKey(id) || !_slots.Wait(0))
            {
                continue;
            }
            started++;
            _inFlight[id] = Task.Run(() => RunAsync(id, ct), CancellationToken.None);
        }
        return started > 0 && started == free;
    }

    private async Task RunAsync(string deliveryId, CancellationToken ct)
    {
        try
        {
            if (await sender.DeliverAsync(deliveryId, ct))
            {
                Interlocked.Increment(ref _attempts);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            log.LogError(e, "Delivering {DeliveryId} failed unexpectedly; its claim will expire and it will be retried", deliveryId);
        }
        finally
        {
            _inFlight.TryRemove(deliveryId, out _);
            _slots.Release();
            signal.Poke();
        }
    }

    /// <summary>
    /// Leases up to <paramref name="limit"/> due deliveries, at most <paramref name="perEndpoint"/> of any one
    /// endpoint (one slow receiver cannot take every slot). Raw SQL because the claim must be one statement.
    /// </summary>
    internal static async Task<List<string>> ClaimAsync(ReferloopDb db, string instanceId, DateTimeOffset now, TimeSpan lease,
        int limit, int perEndpoint, CancellationToken ct)
    {
        var scan = limit * 4;
        var until = now + lease;
        if (db.Database.IsNpgsql())
        {
            return await db.Database.SqlQuery<string>($"""
                WITH candidates AS (
                    SELECT "Id", "EndpointId", "NextAttemptAt" FROM webhook_deliveries
                    WHERE "Status" = 'pending' AND "NextAttemptAt" <= {now}
                      AND ("ClaimedUntil" IS NULL OR "ClaimedUntil" < {now})
                    ORDER BY "NextAttemptAt"
                    LIMIT {scan}
                    FOR UPDATE SKIP LOCKED),
                ranked AS (
                    SELECT "Id", "NextAttemptAt",
                           row_number() OVER (PARTITION BY "EndpointId" ORDER BY "NextAttemptAt") AS rank
                    FROM candidates)
                UPDATE webhook_deliveries SET "ClaimedBy" = {instanceId}, "ClaimedUntil" = {until}
                WHERE "Id" IN (SELECT "Id" FROM ranked WHERE rank <= {perEndpoint} ORDER BY "NextAttemptAt" LIMIT {limit})
                RETURNING "Id" AS "Value"
                """).ToListAsync(ct);
        }
        // SQLite stores instants as UTC ticks (see UtcTicksConverter); one writer at a time, so no row locks needed.
        var nowTicks = now.UtcTicks;
        var untilTicks = until.UtcTicks;
        return await db.Database.SqlQuery<string>($"""
            WITH ranked AS (
                SELECT "Id", "NextAttemptAt",
                       row_number() OVER (PARTITION BY "EndpointId" ORDER BY "NextAttemptAt") AS rank
                FROM (SELECT "Id", "EndpointId", "NextAttemptAt" FROM webhook_deliveries
                      WHERE "Status" = 'pending' AND "NextAttemptAt" <= {nowTicks}
                        AND ("ClaimedUntil" IS NULL OR "ClaimedUntil" < {nowTicks})
                      ORDER BY "NextAttemptAt"
                      LIMIT {scan}))
            UPDATE webhook_deliveries SET "ClaimedBy" = {instanceId}, "ClaimedUntil" = {untilTicks}
            WHERE "Id" IN (SELECT "Id" FROM ranked WHERE rank <= {perEndpoint} ORDER BY "NextAttemptAt" LIMIT {limit})
            RETURNING "Id" AS "Value"
            """).ToListAsync(ct);
    }
}

/// <summary>
/// On SQLite the delivery engine's writes in this instance (fan-out, claims, attempt records) take turns. SQLite has
/// one writer at a time anyway (and <see cref="Storage.SqliteWriteQueue"/> keeps the process's writers from sleeping on
/// SQLITE_BUSY); taking turns here, before a transaction starts, is what lets the attempts that finish while one
/// batch is written gather into the next one. On PostgreSQL a turn is always free: row locks keep writers apart, and
/// serialising their round trips would only make them wait.
/// </summary>
public sealed class DeliveryWriteLock(IConfiguration configuration)
{
    private readonly SemaphoreSlim? _turn =
        (configuration["Database:Provider"] ?? "sqlite").Trim().Equals("sqlite", StringComparison.OrdinalIgnoreCase)
            ? new SemaphoreSlim(1, 1)
            : null;

    public async Task<IDisposable> TakeAsync(CancellationToken ct)
    {
        if (_turn is null)
        {
            return Free.Instance;
        }
        await _turn.WaitAsync(ct);
        return new Turn(_turn);
    }

    private sealed class Free : IDisposable
    {
        public static readonly Free Instance = new();

        public void Dispose()
        {
        }
    }

    private sealed class Turn(SemaphoreSlim turn) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                turn.Release();
            }
        }
    }
}
