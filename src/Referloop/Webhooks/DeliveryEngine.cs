using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// A delivery this instance holds, with what sending it needs, until its lease ends; <paramref name="Attempts"/> is
/// how many attempts were recorded when it was leased.
/// </summary>
public sealed record ClaimedDelivery(string Id, OutboxMessage Message, WebhookEndpoint Endpoint, DateTimeOffset ClaimedUntil,
    int Attempts = 0);

/// <summary>What fanning out a set of messages made: their deliveries, and those of them leased to this instance.</summary>
internal sealed class FanOutResult(IReadOnlyList<OutboxMessage> messages)
{
    public IReadOnlyList<OutboxMessage> Messages { get; } = messages;
    public List<WebhookDelivery> Deliveries { get; } = [];
    public List<ClaimedDelivery> Claimed { get; } = [];

    /// <summary>Some deliveries were not leased (no room): the loop must be woken to claim them.</summary>
    public bool LeftForLoop { get; set; }
}

/// <summary>
/// The delivery loop of one server instance:
/// <list type="number">
/// <item>fan-out: an outbox message becomes one delivery per subscribed endpoint, and is marked dispatched in the
/// same transaction, so a crash at any point leaves either both or neither. Mostly this happens in the save that
/// writes the message (<see cref="FanOutOnSaveAsync"/>); the loop fans out what was written otherwise. The new
/// deliveries are leased to this instance at once (as far as it has room), so they need no claim;</item>
/// <item>claim: due deliveries are leased to this instance in batches (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL,
/// so instances never take the same row; a dead instance's lease simply runs out) and read with their messages in
/// one query;</item>
/// <item>send: held deliveries start as soon as a slot is free, within the overall and per-endpoint bounds; a
/// finished one starts the next without waiting for the loop.</item>
/// </list>
/// It sleeps until a local write pokes <see cref="OutboxSignal"/>, a finished attempt leaves room for more, or the
/// poll interval passes; due-ness is always judged by the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class DeliveryEngine(IServiceScopeFactory scopes, DeliverySender sender, OutboxSignal signal,
    TimeProvider clock, IOptions<WebhookOptions> options, ILogger<DeliveryEngine> log) : BackgroundService
{
    private readonly WebhookOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();

    // Guarded by _lock: what this instance holds (waiting in _ready or in flight) and how much of it runs per endpoint.
    private readonly Lock _lock = new();
    private readonly List<ClaimedDelivery> _ready = [];
    private readonly HashSet<string> _held = [];
    private readonly Dictionary<string, int> _runningPerEndpoint = [];
    private int _running;

    // Held deliveries that were sent and wait for their record (a group commit): they no longer need a slot.
    private int _recording;

    // Deliveries recorded while a claim was under way, with their attempts recorded by then. A lease can run out while
    // its attempt waits for its record (a long wait, a test's clock jump) and be claimed again just before that record
    // commits: holding it as the claim read it, once the record has let go of it, would send it twice.
    private readonly Dictionary<string, int> _recordedDuringClaim = [];
    private bool _claiming;

    // Deliveries claimed again while this instance still had them in hand: recorded, but not yet let go of. A replay
    // or an immediate retry makes a delivery due the moment its record commits. Dropped, such a claim would leave a
    // lease nobody holds, and the next attempt would wait for it to run out; it is held once the attempt lets go.
    private readonly Dictionary<string, ClaimedDelivery> _claimedInHand = [];

    // Set when a claim or fan-out stopped for want of room: then a freed slot, not only a record, wakes the loop.
    private volatile bool _wantsRoom;
    private CancellationToken _stopping;

    // Attempts and their records run on after the stop signal (SIGTERM) so that they finish and are recorded; this
    // cuts them short only when the host's shutdown timeout runs out. Leases are renewed until they are done.
    private readonly CancellationTokenSource _abandon = new();
    private readonly CancellationTokenSource _stopRenewing = new();
    private long _attempts;

    // Set while the loop runs: only then are deliveries leased to this instance as they are created.
    private volatile bool _delivering;

    public string InstanceId { get; } = options.Value.InstanceId
        ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Deliveries this instance has attempted since it started.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    private int MaxConcurrency => Math.Max(1, _options.MaxConcurrency);
    private int PerEndpoint => Math.Max(1, _options.MaxConcurrencyPerEndpoint);

    /// <summary>
    /// Held unsent at most: four rounds of every slot, so a slot never waits for a claim or fan-out (on PostgreSQL a
    /// fan-out of a backlog takes longer than two rounds of sends to a fast receiver).
    /// </summary>
    private int MaxHeld => MaxConcurrency * 4;

    /// <summary>Held at most, sent ones waiting for their record included: a bound should recording fall behind.</summary>
    private int MaxHeldInAll => MaxHeld * 4;

    /// <summary>Held and not yet sent; call under <see cref="_lock"/>.</summary>
    private int Unsent => _held.Count - _recording;

    /// <summary>
    /// Held at most per endpoint and claim, so one busy endpoint leaves room for the others; enough rounds of its
    /// slots that a backlog drains at the receiver's pace rather than the claims'.
    /// </summary>
    private int MaxHeldPerEndpoint => PerEndpoint * 16;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.DeliveryEnabled)
        {
            return;
        }
        _stopping = stoppingToken;
        await Task.Yield();
        _delivering = true;
        var renewing = RenewLeasesAsync(_stopRenewing.Token);
        while (!stoppingToken.IsCancellationRequested)
        {
            var moreWork = false;
            try
            {
                moreWork |= await FanOutAsync(stoppingToken);
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
                moreWork |= await ClaimAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogWarning(e, "Claiming webhook deliveries failed; trying again shortly");
            }
            catch (Exception)
            {
                break;
            }
            StartReady();
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
        _delivering = false;
        var inFlight = _inFlight.Count;
        if (inFlight > 0)
        {
            log.LogInformation("Stopping: waiting for {Count} webhook attempts in flight to finish", inFlight);
        }
        try
        {
            // Attempts on the wire finish and are recorded, under leases still renewed, unless the host's shutdown
            // timeout runs out first (then they are cut short, recorded by nobody, and made again later).
            await Task.WhenAll(_inFlight.Values);
        }
        catch (Exception e)
        {
            log.LogDebug(e, "Webhook attempts cut short by shutdown will be made again");
        }
        await _stopRenewing.CancelAsync();
        await renewing;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await using (cancellationToken.Register(_abandon.Cancel))
        {
            await base.StopAsync(cancellationToken);
        }
        try
        {
            // Hand back what this instance held (claimed, not yet sent) so that another one, or the next start, takes
            // it at once instead of waiting for the lease. A few seconds even when the shutdown timeout is spent.
            using var release = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            await db.WebhookDeliveries.Where(d => d.ClaimedBy == InstanceId).ExecuteUpdateAsync(s => s
                .SetProperty(d => d.ClaimedBy, (string?)null)
                .SetProperty(d => d.ClaimedUntil, (DateTimeOffset?)null), release.Token);
        }
        catch (Exception e)
        {
            log.LogDebug(e, "Could not release webhook claims on shutdown; their leases will expire");
        }
    }

    public override void Dispose()
    {
        _abandon.Dispose();
        _stopRenewing.Dispose();
        base.Dispose();
    }

    /// <summary>How often held leases are renewed: four times a lease, so a missed renewal or two costs nothing.</summary>
    private TimeSpan RenewInterval => TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond * 100, _options.ClaimLease.Ticks / 4));

    /// <summary>
    /// Keeps the leases of everything this instance holds (waiting, on the wire, waiting for its record) from running
    /// out while it lives: every <see cref="RenewInterval"/> they are extended to a full <see cref="WebhookOptions.ClaimLease"/>.
    /// So the lease can be short (a dead instance's deliveries are free soon after its last renewal) and still outlast
    /// any attempt of a live one: another instance claims a delivery only once its holder stopped renewing.
    /// </summary>
    private async Task RenewLeasesAsync(CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await Task.Delay(RenewInterval, clock, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await RenewLeasesOnceAsync(CancellationToken.None);
            }
            catch (Exception e)
            {
                log.LogWarning(e, "Renewing webhook leases failed; trying again in {Interval}", RenewInterval);
            }
        }
    }

    internal async Task RenewLeasesOnceAsync(CancellationToken ct)
    {
        List<string> held;
        lock (_lock)
        {
            held = [.. _held];
        }
        if (held.Count == 0)
        {
            return;
        }
        // Whole milliseconds, so that the value read back compares equal on PostgreSQL (microseconds) too.
        var now = clock.GetUtcNow();
        var until = now.AddTicks(-(now.UtcTicks % TimeSpan.TicksPerMillisecond)) + _options.ClaimLease;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var renewed = new HashSet<string>();
        foreach (var chunk in held.Chunk(500))
        {
            var ids = chunk.ToList();
            // Only leases still this instance's: a recorded attempt has let go of its delivery, and a lease that ran
            // out and was taken by another instance stays theirs. Read after the write: what reads as this
            // instance's with the new end was renewed, and nobody takes a lease that has not run out.
            await db.WebhookDeliveries
                .Where(d => ids.Contains(d.Id) && d.ClaimedBy == InstanceId)
                .ExecuteUpdateAsync(s => s.SetProperty(d => d.ClaimedUntil, until), ct);
            renewed.UnionWith(await db.WebhookDeliveries
                .Where(d => ids.Contains(d.Id) && d.ClaimedBy == InstanceId && d.ClaimedUntil >= until)
                .Select(d => d.Id)
                .ToListAsync(ct));
        }
        lock (_lock)
        {
            for (var i = 0; i < _ready.Count; i++)
            {
                if (renewed.Contains(_ready[i].Id) && _ready[i].ClaimedUntil < until)
                {
                    _ready[i] = _ready[i] with { ClaimedUntil = until };
                }
            }
        }
    }

    private int Room()
    {
        if (!_delivering)
        {
            return 0;
        }
        lock (_lock)
        {
            return RoomUnderLock();
        }
    }

    private int RoomUnderLock() => Math.Max(0, Math.Min(MaxHeld - Unsent, MaxHeldInAll - _held.Count));

    /// <summary>
    /// Fans out messages in the save that writes them (see <see cref="OutboxSaveInterceptor"/>): one delivery per
    /// subscribed endpoint, for the same save to write, the messages are marked dispatched, and as many new
    /// deliveries as this instance has room for are leased to it. The caller hands the leased ones to
    /// <see cref="Start"/> once the transaction has committed, so an event's first attempt needs neither a second
    /// transaction nor a wake-up of the loop; what it leaves unleased the loop claims.
    /// </summary>
    internal async Task<FanOutResult> FanOutOnSaveAsync(ReferloopDb db, IReadOnlyList<OutboxMessage> messages, CancellationToken ct)
    {
        var endpoints = await EnabledEndpoints.ReadAsync(db, ct);
        var fanOut = new FanOutResult(messages);
        NewDeliveries(messages, endpoints, clock.GetUtcNow(), endpoints.Count == 0 ? 0 : Room(), fanOut);
        return fanOut;
    }

    /// <summary>Starts deliveries leased in a save that has now committed.</summary>
    internal void Start(List<ClaimedDelivery> claimed) => Hold(claimed);

    /// <summary>
    /// Makes one delivery per subscribed endpoint of each message into <paramref name="fanOut"/>, leasing to this
    /// instance as many as <paramref name="room"/> allows, and marks each message dispatched; the caller writes them.
    /// </summary>
    private void NewDeliveries(IReadOnlyList<OutboxMessage> messages, List<WebhookEndpoint> endpoints, DateTimeOffset now,
        int room, FanOutResult fanOut)
    {
        var until = now + _options.ClaimLease;
        var perEndpoint = new Dictionary<string, int>();
        foreach (var message in messages)
        {
            foreach (var endpoint in endpoints)
            {
                if (!endpoint.Wants(message))
                {
                    continue;
                }
                var id = Ids.New("dlv");
                var held = perEndpoint.GetValueOrDefault(endpoint.Id);
                var claim = fanOut.Claimed.Count < room && held < MaxHeldPerEndpoint;
                if (claim)
                {
                    perEndpoint[endpoint.Id] = held + 1;
                    fanOut.Claimed.Add(new ClaimedDelivery(id, message, endpoint, until));
                }
                else
                {
                    fanOut.LeftForLoop = true;
                }
                fanOut.Deliveries.Add(new WebhookDelivery
                {
                    Id = id,
                    MessageId = message.Id,
                    EndpointId = endpoint.Id,
                    Status = DeliveryStatus.Pending,
                    NextAttemptAt = now,
                    ClaimedBy = claim ? InstanceId : null,
                    ClaimedUntil = claim ? until : null,
                    CreatedAt = now,
                    UpdatedAt = now,
                });
            }
            message.DispatchedAt = now;
        }
    }

    /// <summary>Turns one batch of outbox messages into deliveries; true when it filled the batch (there may be more).</summary>
    internal async Task<bool> FanOutAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // Cheap look first, so an idle instance does not take SQLite's write lock on every poll.
        if (!await db.Outbox.AnyAsync(m => m.DispatchedAt == null, ct))
        {
            return false;
        }
        // Nothing here recovers from a failed save inside the transaction, so a savepoint per save buys nothing.
        db.Database.AutoSavepointsEnabled = false;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // No more messages than this instance can lease deliveries for (one each, for a single endpoint), so a backlog
        // goes from the outbox to the wire without a claim in between; with no room, a whole batch, left to be claimed.
        var room = Room();
        var size = room > 0 ? Math.Min(_options.FanOutBatchSize, room) : _options.FanOutBatchSize;
        // Read untracked and marked dispatched with one statement: tracking each message's change costs more than it saves.
        var batch = !db.OnSqlite
            ? await db.Outbox.FromSql($"""
                SELECT * FROM outbox WHERE "DispatchedAt" IS NULL ORDER BY "Id" LIMIT {size} FOR UPDATE SKIP LOCKED
                """).AsNoTracking().ToListAsync(ct)
            : await db.Outbox.AsNoTracking().Where(m => m.DispatchedAt == null).OrderBy(m => m.Id).Take(size).ToListAsync(ct);
        if (batch.Count == 0)
        {
            return false;
        }
        var endpoints = await EnabledEndpoints.ReadAsync(db, ct);
        var now = clock.GetUtcNow();
        var fanOut = new FanOutResult(batch);
        NewDeliveries(batch, endpoints, now, room, fanOut);
        var dispatched = batch.Select(m => m.Id).ToList();
        await db.Outbox.Where(m => dispatched.Contains(m.Id)).ExecuteUpdateAsync(s => s.SetProperty(m => m.DispatchedAt, now), ct);
        await InsertAsync(db, fanOut.Deliveries, ct);
        await transaction.CommitAsync(ct);
        Hold(fanOut.Claimed);
        _wantsRoom |= batch.Count == size && (room == 0 || size == room);
        return batch.Count == size;
    }

    /// <summary>Writes new deliveries with one statement rather than one tracked entity each.</summary>
    internal static Task InsertAsync(ReferloopDb db, List<WebhookDelivery> deliveries, CancellationToken ct) =>
        new BulkRows(db, deliveries.Count)
            .Text("Id", i => deliveries[i].Id)
            .Text("MessageId", i => deliveries[i].MessageId)
            .Text("EndpointId", i => deliveries[i].EndpointId)
            .Text("Status", i => deliveries[i].Status)
            .Int("Attempts", _ => 0)
            .Int("Round", _ => 0)
            .Instant("NextAttemptAt", i => deliveries[i].NextAttemptAt)
            .Text("ClaimedBy", i => deliveries[i].ClaimedBy)
            .Instant("ClaimedUntil", i => deliveries[i].ClaimedUntil)
            .Bool("IsTest", _ => false)
            .Instant("CreatedAt", i => deliveries[i].CreatedAt)
            .Instant("UpdatedAt", i => deliveries[i].UpdatedAt)
            .InsertAsync("webhook_deliveries", ct);

    /// <summary>Leases due deliveries while this instance has room; true when it filled its room (there may be more).</summary>
    private async Task<bool> ClaimAsync(CancellationToken ct)
    {
        int room;
        lock (_lock)
        {
            // Below one round of slots held unsent: claim the next batch before the slots run dry.
            room = Unsent >= MaxConcurrency ? 0 : RoomUnderLock();
            if (room == 0)
            {
                _wantsRoom = true;
                return false;
            }
            _claiming = true;
        }
        try
        {
            return await ClaimAsync(room, ct);
        }
        finally
        {
            lock (_lock)
            {
                _claiming = false;
                _recordedDuringClaim.Clear();
            }
        }
    }

    private async Task<bool> ClaimAsync(int room, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var now = clock.GetUtcNow();
        // A read first: the claim is a write, and on SQLite every write waits its turn behind the events being ingested.
        // Ordered by the due index, so the look walks only due rows; an EXISTS may be planned as a scan of every
        // delivery ever made.
        var due = await db.WebhookDeliveries
            .Where(d => d.Status == DeliveryStatus.Pending && d.NextAttemptAt <= now && (d.ClaimedUntil == null || d.ClaimedUntil < now))
            .OrderBy(d => d.NextAttemptAt)
            .Select(d => d.Id)
            .FirstOrDefaultAsync(ct);
        if (due is null)
        {
            return false;
        }
        var until = now + _options.ClaimLease;
        var ids = await ClaimAsync(db, InstanceId, now, _options.ClaimLease, room, MaxHeldPerEndpoint, ct);
        if (ids.Count == 0)
        {
            return false;
        }
        var rows = await db.WebhookDeliveries.AsNoTracking()
            .Where(d => ids.Contains(d.Id))
            .Select(d => new { d.Id, d.Status, d.Attempts, d.EndpointId, d.Message })
            .ToListAsync(ct);
        // A claim is mostly of a few endpoints: each is read once, not once per delivery.
        var endpointIds = rows.Select(r => r.EndpointId).Distinct().ToList();
        var endpoints = await db.WebhookEndpoints.AsNoTracking().Where(e => endpointIds.Contains(e.Id)).ToDictionaryAsync(e => e.Id, ct);
        // Gone when the endpoint was deleted since (with its deliveries).
        var found = rows.Where(r => endpoints.ContainsKey(r.EndpointId)).ToList();
        foreach (var row in found.Where(r => !endpoints[r.EndpointId].Enabled))
        {
            await EndpointState.FailDisabledAsync(db, row.Id, endpoints[row.EndpointId], now, ct);
        }
        var order = ids.Select((id, index) => (id, index)).ToDictionary(p => p.id, p => p.index);
        Hold(found.Where(r => endpoints[r.EndpointId].Enabled && r.Status == DeliveryStatus.Pending)
            .OrderBy(r => order[r.Id])
            .Select(r => new ClaimedDelivery(r.Id, r.Message!, endpoints[r.EndpointId], until, r.Attempts))
            .ToList(), reclaimed: true);
        _wantsRoom |= ids.Count >= room;
        return ids.Count >= room;
    }

    /// <param name="reclaimed">From a claim, which may have taken a delivery whose attempt was recorded meanwhile.</param>
    private void Hold(List<ClaimedDelivery> claimed, bool reclaimed = false)
    {
        if (claimed.Count == 0)
        {
            return;
        }
        lock (_lock)
        {
            foreach (var delivery in claimed)
            {
                if (reclaimed && _recordedDuringClaim.TryGetValue(delivery.Id, out var recorded) && delivery.Attempts < recorded)
                {
                    // Read before this instance's record of its last attempt committed.
                    continue;
                }
                if (_held.Add(delivery.Id))
                {
                    _ready.Add(delivery);
                }
                else
                {
                    // A lease that ran out while this instance still held it (a long wait, or a test's clock jump)
                    // comes back to its holder: it is already in hand, under the new lease.
                    var waiting = _ready.FindIndex(d => d.Id == delivery.Id);
                    if (waiting >= 0)
                    {
                        _ready[waiting] = delivery;
                    }
                    else if (reclaimed)
                    {
                        _claimedInHand[delivery.Id] = delivery;
                    }
                }
            }
        }
        StartReady();
    }

    /// <summary>Starts held deliveries, oldest first, while slots are free and their endpoint is below its bound.</summary>
    private void StartReady()
    {
        lock (_lock)
        {
            var now = clock.GetUtcNow();
            // An attempt starts only with time left on its lease; one too close to its end is left to be claimed again.
            var margin = TimeSpan.FromTicks(Math.Min(_options.Timeout.Ticks, _options.ClaimLease.Ticks / 2));
            for (var i = 0; i < _ready.Count && _running < MaxConcurrency && !_stopping.IsCancellationRequested;)
            {
                var delivery = _ready[i];
                if (now + margin > delivery.ClaimedUntil)
                {
                    _ready.RemoveAt(i);
                    _held.Remove(delivery.Id);
                    continue;
                }
                var running = _runningPerEndpoint.GetValueOrDefault(delivery.Endpoint.Id);
                if (running >= PerEndpoint)
                {
                    i++;
                    continue;
                }
                _ready.RemoveAt(i);
                _runningPerEndpoint[delivery.Endpoint.Id] = running + 1;
                _running++;
                _inFlight[delivery.Id] = Task.Run(() => RunAsync(delivery), CancellationToken.None);
            }
        }
    }

    /// <summary>
    /// Sends, then frees the slot for the next delivery while this attempt waits for its record to be written with
    /// the others that finish meanwhile. The delivery stays held (and counted against what this instance claims)
    /// until it is recorded; a crash before that makes it again, which is what at-least-once allows.
    /// </summary>
    private async Task RunAsync(ClaimedDelivery delivery)
    {
        var sending = true;
        try
        {
            var outcome = await sender.AttemptAsync(delivery, _abandon.Token);
            Interlocked.Increment(ref _attempts);
            sending = false;
            Finished(delivery, sending: true, recorded: false);
            await sender.RecordAsync(delivery, outcome, _abandon.Token);
        }
        catch (OperationCanceledException) when (_abandon.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            log.LogError(e, "Delivering {DeliveryId} failed unexpectedly; its claim will expire and it will be retried", delivery.Id);
        }
        finally
        {
            Finished(delivery, sending, recorded: true);
        }
    }

    private void Finished(ClaimedDelivery delivery, bool sending, bool recorded)
    {
        bool lowOnWork;
        lock (_lock)
        {
            if (sending)
            {
                _running--;
                var running = _runningPerEndpoint[delivery.Endpoint.Id] - 1;
                if (running == 0)
                {
                    _runningPerEndpoint.Remove(delivery.Endpoint.Id);
                }
                else
                {
                    _runningPerEndpoint[delivery.Endpoint.Id] = running;
                }
            }
            if (sending && !recorded)
            {
                _recording++;
            }
            if (recorded)
            {
                if (!sending)
                {
                    _recording--;
                }
                if (_claiming)
                {
                    _recordedDuringClaim[delivery.Id] = delivery.Attempts + 1;
                }
                _inFlight.TryRemove(delivery.Id, out _);
                _held.Remove(delivery.Id);
                // Read after this attempt's record: a live lease for the next attempt. Read before it, the record
                // has since cleared that lease, and the delivery is claimed afresh when it is due.
                if (_claimedInHand.Remove(delivery.Id, out var again) && again.Attempts > delivery.Attempts
                    && _held.Add(again.Id))
                {
                    _ready.Add(again);
                }
            }
            lowOnWork = Unsent < MaxConcurrency;
        }
        StartReady();
        if (lowOnWork && (recorded || _wantsRoom))
        {
            _wantsRoom = false;
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
        if (!db.OnSqlite)
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
