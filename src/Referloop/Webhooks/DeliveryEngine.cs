using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// The delivery loop of one server instance:
/// <list type="number">
/// <item>fan-out: an outbox message becomes one delivery per endpoint subscribed at this moment, and is marked
/// dispatched in the same transaction, so a crash at any point leaves either both or neither. Its deliveries are
/// created leased to this instance (as far as it has room), so they need no claim. The batched writers
/// (<see cref="OutboxWriter"/>) fan their messages out in their own transaction while this instance has room
/// (<see cref="AddFanOut"/> and <see cref="WriteMailsAsync"/>, then <see cref="HandOver"/> after the commit); other
/// writers write the message alone, and the loop here fans it out when it takes it for delivery;</item>
/// <item>claim: due deliveries (retries, a dead instance's, what a fan-out had no room for) are leased to this
/// instance many at a time, with one statement (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, so instances never take
/// the same row; a dead instance's lease simply runs out), and read with their messages and endpoints in one query;</item>
/// <item>send: <see cref="DeliverySchedule"/> decides which held deliveries start (overall and per-endpoint bounds,
/// rates, leases); a finished one hands its result to <see cref="DeliveryRecorder"/> and starts the next without
/// waiting for the loop.</item>
/// </list>
/// It sleeps until a writer pokes <see cref="OutboxSignal"/>, a finished attempt leaves room for more, or the poll
/// interval passes; due-ness is always judged by the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class DeliveryEngine(IServiceScopeFactory scopes, DeliverySender sender, DeliveryRecorder recorder, OutboxSignal signal,
    Email.EmailOutbox email, TimeProvider clock, IOptions<WebhookOptions> options, ILogger<DeliveryEngine> log) : BackgroundService
{
    private readonly WebhookOptions _options = options.Value;

    // Everything this instance holds and how much of it runs, guarded by _lock.
    private readonly Lock _lock = new();
    private readonly DeliverySchedule _schedule = new(DeliveryLimits.From(options.Value));
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();

    // Set when a claim or fan-out stopped for want of room: then a freed slot, not only a record, wakes the loop.
    private volatile bool _wantsRoom;

    // Set while the loop runs: only then are deliveries leased to this instance.
    private volatile bool _delivering;
    private CancellationToken _stopping;

    // Attempts and their records run on after the stop signal (SIGTERM) so that they finish and are recorded; this
    // cuts them short only when the host's shutdown timeout runs out. Leases are renewed until they are done.
    private readonly CancellationTokenSource _abandon = new();
    private readonly CancellationTokenSource _stopRenewing = new();
    private long _attempts;

    public string InstanceId { get; } = options.Value.InstanceId
        ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Deliveries this instance has attempted since it started.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    private DeliveryLimits Limits => _schedule.Limits;

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
                    await signal.WaitAsync(Sleep(), stoppingToken);
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

    /// <summary>Until the next poll, or sooner when a delivery held back by its endpoint's rate may go.</summary>
    private TimeSpan Sleep()
    {
        var now = clock.GetUtcNow();
        DateTimeOffset? slot;
        lock (_lock)
        {
            slot = _schedule.NextRateSlot(now);
        }
        return slot is { } at && at - now < _options.PollInterval
            ? TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, (at - now).Ticks))
            : _options.PollInterval;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await using (cancellationToken.Register(_abandon.Cancel))
        {
            await base.StopAsync(cancellationToken);
        }
        try
        {
            // Hand back what this instance held but had not started, so that another one, or the next start, takes it
            // at once instead of waiting for the lease: by id (claims have no index of their own), and never an
            // attempt still on the wire (cut short by the shutdown timeout), which keeps its lease until it runs out.
            // A few seconds even when the shutdown timeout is spent.
            List<string> waiting;
            lock (_lock)
            {
                waiting = _schedule.LetGoOfWaiting();
            }
            if (waiting.Count > 0)
            {
                using var release = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await using var scope = scopes.CreateAsyncScope();
                await ReleaseAsync(scope.ServiceProvider.GetRequiredService<ReferloopDb>(), waiting, until: null, release.Token);
            }
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

    /// <summary>
    /// After a change that stopped deliveries (cancelled, erased, their endpoint disabled or deleted): drops those this
    /// instance holds waiting to start (<see cref="DropStoppedHereAsync"/>) and tells the other instances to drop theirs
    /// (<see cref="DeliveryStops"/>), so that what a person stopped is not sent once the change is answered. An attempt
    /// already on the wire is dropped when it returns (the recorder skips cancelled deliveries).
    /// </summary>
    public async Task DropStoppedAsync()
    {
        await DropStoppedHereAsync();
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await DeliveryStops.TellAsync(scope.ServiceProvider.GetRequiredService<ReferloopDb>(), InstanceId, CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogWarning(e, "Telling the other instances about stopped webhook deliveries failed; their next lease renewal drops them");
        }
    }

    /// <summary>
    /// Drops the held deliveries that wait to start and no longer may, at once instead of at the next lease renewal,
    /// by renewing now.
    /// </summary>
    internal async Task DropStoppedHereAsync()
    {
        try
        {
            await RenewLeasesOnceAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogWarning(e, "Dropping stopped webhook deliveries failed; the next lease renewal drops them");
        }
    }

    // One renewal at a time (the loop's, and those asked for after a change): two at once could write their lease
    // ends out of order, and one's new end would then not read back as renewed.
    private readonly SemaphoreSlim _renewing = new(1, 1);

    internal async Task RenewLeasesOnceAsync(CancellationToken ct)
    {
        await _renewing.WaitAsync(ct);
        try
        {
            await RenewHeldAsync(ct);
        }
        finally
        {
            _renewing.Release();
        }
    }

    private async Task RenewHeldAsync(CancellationToken ct)
    {
        HeldSnapshot asked;
        lock (_lock)
        {
            asked = _schedule.Snapshot();
        }
        if (asked.Ids.Count == 0)
        {
            return;
        }
        // Whole milliseconds, so that the value read back compares equal on PostgreSQL (microseconds) too.
        var now = clock.GetUtcNow();
        var until = now.AddTicks(-(now.UtcTicks % TimeSpan.TicksPerMillisecond)) + _options.ClaimLease;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var kept = new HashSet<string>();
        foreach (var chunk in asked.Ids.Chunk(500))
        {
            var ids = chunk.ToList();
            // Only leases still this instance's: a recorded attempt has let go of its delivery, and a lease that ran
            // out and was taken by another instance stays theirs. Whatever the delivery's status: an attempt on the
            // wire keeps its claim until it is recorded, even if a person cancelled, replayed or recovered it
            // meanwhile. Read after the write: what reads as this instance's with the new end was renewed, and nobody
            // takes a lease that has not run out; what waits to start is kept only while it is still pending.
            await db.WebhookDeliveries
                .Where(d => ids.Contains(d.Id) && d.ClaimedBy == InstanceId)
                .ExecuteUpdateAsync(s => s.SetProperty(d => d.ClaimedUntil, until), ct);
            kept.UnionWith(await db.WebhookDeliveries
                .Where(d => ids.Contains(d.Id) && d.ClaimedBy == InstanceId && d.ClaimedUntil >= until && d.Status == DeliveryStatus.Pending)
                .Select(d => d.Id)
                .ToListAsync(ct));
        }
        List<string> dropped;
        lock (_lock)
        {
            dropped = _schedule.Renewed(asked, kept, until);
        }
        // Dropped unsent (cancelled, erased, its endpoint disabled, or taken over): let go of the claims this renewal
        // just extended, so that a replay or recover need not wait for the lease.
        await ReleaseAsync(db, dropped, until, ct);
    }

    private Task ReleaseAsync(ReferloopDb db, List<string> deliveryIds, DateTimeOffset? until, CancellationToken ct) =>
        ReleaseClaimsAsync(db, InstanceId, deliveryIds, until, ct);

    /// <summary>
    /// Clears <paramref name="holder"/>'s claims on deliveries it no longer holds, in chunks by id (claims have no
    /// index of their own); with <paramref name="until"/>, only those whose lease still ends then (not claimed again
    /// since). A claim someone else took is left alone.
    /// </summary>
    internal static async Task ReleaseClaimsAsync(ReferloopDb db, string holder, IEnumerable<string> deliveryIds, DateTimeOffset? until,
        CancellationToken ct)
    {
        foreach (var chunk in deliveryIds.Chunk(500))
        {
            var ids = chunk.ToList();
            await db.WebhookDeliveries
                .Where(d => ids.Contains(d.Id) && d.ClaimedBy == holder && (until == null || d.ClaimedUntil == until))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(d => d.ClaimedBy, (string?)null)
                    .SetProperty(d => d.ClaimedUntil, (DateTimeOffset?)null), ct);
        }
    }

    /// <summary>How many more deliveries this instance may lease now; 0 when it is not delivering.</summary>
    internal int Room()
    {
        if (!_delivering)
        {
            return 0;
        }
        lock (_lock)
        {
            return _schedule.Room;
        }
    }

    /// <summary>How many deliveries of one of <paramref name="endpoints"/> this instance may lease now, at most.</summary>
    private int RoomForOneOf(List<WebhookEndpoint> endpoints)
    {
        if (!_delivering || endpoints.Count == 0)
        {
            return 0;
        }
        lock (_lock)
        {
            return Math.Min(_schedule.Room, endpoints.Max(e => _schedule.RoomFor(e.Id)));
        }
    }

    /// <summary>
    /// Fans out one batch of outbox messages: one delivery per subscribed endpoint, leased to this instance as far as
    /// it has room, and the messages marked dispatched, in one transaction; true when it filled the batch (there may
    /// be more).
    /// </summary>
    internal async Task<bool> FanOutAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // Cheap look first, so an idle instance does not take SQLite's write lock on every poll.
        if (!await db.Outbox.AnyAsync(m => m.DispatchedAt == null, ct))
        {
            return false;
        }
        db.Database.AutoSavepointsEnabled = false;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var endpoints = await EnabledEndpoints.ReadAsync(db, ct);
        // No more messages than this instance can lease deliveries for (one each, for the endpoint with the most room
        // here), so a backlog goes from the outbox to the wire without a claim in between; with no room, a whole
        // batch, left to be claimed.
        var room = RoomForOneOf(endpoints);
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
        var now = clock.GetUtcNow();
        var dispatched = batch.Select(m => m.Id).ToList();
        await db.Outbox.Where(m => dispatched.Contains(m.Id)).ExecuteUpdateAsync(s => s.SetProperty(m => m.DispatchedAt, now), ct);
        var fannedOut = await WriteFanOutAsync(db, batch, endpoints, now, room, ct);
        await transaction.CommitAsync(ct);
        HandOver(fannedOut);
        _wantsRoom |= batch.Count == size && (room == 0 || size == room);
        return batch.Count == size;
    }

    /// <summary>
    /// Writes the fan-out of messages that the caller's transaction marks dispatched: their deliveries (the first
    /// <paramref name="room"/> leased to this instance) and, as e-mail subscribes to the same messages, their mails.
    /// Once that transaction has committed, the caller passes the result to <see cref="HandOver"/>; should it roll
    /// back instead, nothing was taken.
    /// </summary>
    internal async Task<FannedOut> WriteFanOutAsync(ReferloopDb db, IReadOnlyList<OutboxMessage> messages, List<WebhookEndpoint> endpoints,
        DateTimeOffset now, int room, CancellationToken ct)
    {
        var rows = new StatementBatch(db);
        var claimed = AddFanOut(db, rows, messages, endpoints, now, room);
        await rows.RunAsync(ct);
        return await WriteMailsAsync(db, messages, claimed, now, ct);
    }

    /// <summary>
    /// The first half of <see cref="WriteFanOutAsync"/>: adds the messages' deliveries to <paramref name="rows"/> and
    /// returns those leased here. Once the rows are written, <see cref="WriteMailsAsync"/> writes the mails.
    /// </summary>
    internal List<ClaimedDelivery> AddFanOut(ReferloopDb db, StatementBatch rows, IReadOnlyList<OutboxMessage> messages,
        List<WebhookEndpoint> endpoints, DateTimeOffset now, int room)
    {
        var (deliveries, claimed) = FanOut(messages, endpoints, now, room);
        rows.Insert(DeliveryRows(db, deliveries), "webhook_deliveries");
        return claimed;
    }

    /// <summary>The second half of <see cref="WriteFanOutAsync"/>: the messages' mails, which read the rows they are about.</summary>
    internal async Task<FannedOut> WriteMailsAsync(ReferloopDb db, IReadOnlyList<OutboxMessage> messages, List<ClaimedDelivery> claimed,
        DateTimeOffset now, CancellationToken ct) =>
        new(claimed, await email.FanOutAsync(db, messages, now, ct));

    /// <summary>After the commit that wrote a fan-out: what it leased here starts as the schedule allows, and the mails go.</summary>
    internal void HandOver(FannedOut fannedOut)
    {
        email.Written(fannedOut.Mails);
        Hold(fannedOut.Claimed);
    }

    /// <summary>
    /// One delivery per subscribed endpoint of each message, the first <paramref name="room"/> of them (as far as each
    /// endpoint has room here: <see cref="DeliverySchedule.RoomFor"/>) leased to this instance; the caller writes them.
    /// </summary>
    private (List<WebhookDelivery> Deliveries, List<ClaimedDelivery> Claimed) FanOut(IReadOnlyList<OutboxMessage> messages,
        List<WebhookEndpoint> endpoints, DateTimeOffset now, int room)
    {
        var until = now + _options.ClaimLease;
        var deliveries = new List<WebhookDelivery>();
        var claimed = new List<ClaimedDelivery>();
        Dictionary<string, int> roomFor;
        lock (_lock)
        {
            roomFor = endpoints.ToDictionary(e => e.Id, e => _schedule.RoomFor(e.Id));
        }
        foreach (var message in messages)
        {
            foreach (var endpoint in endpoints.Where(e => e.Wants(message)))
            {
                var id = Ids.New("dlv");
                var claim = claimed.Count < room && roomFor[endpoint.Id] > 0;
                if (claim)
                {
                    roomFor[endpoint.Id]--;
                    claimed.Add(new ClaimedDelivery(id, message, endpoint, until));
                }
                deliveries.Add(new WebhookDelivery
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
        }
        return (deliveries, claimed);
    }

    /// <summary>New deliveries as one statement's rows rather than one tracked entity each.</summary>
    private static BulkRows DeliveryRows(ReferloopDb db, List<WebhookDelivery> deliveries) =>
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
            .Instant("UpdatedAt", i => deliveries[i].UpdatedAt);

    /// <summary>Leases due deliveries while this instance has room; true when it filled its room (there may be more).</summary>
    private async Task<bool> ClaimAsync(CancellationToken ct)
    {
        int room;
        Dictionary<string, int> rooms;
        lock (_lock)
        {
            var now = clock.GetUtcNow();
            room = _delivering ? _schedule.ClaimRoom(now) : 0;
            if (room == 0)
            {
                _wantsRoom = true;
                return false;
            }
            _schedule.BeginClaim(now);
            rooms = _schedule.ClaimRooms();
        }
        try
        {
            return await ClaimAsync(room, rooms, ct);
        }
        finally
        {
            lock (_lock)
            {
                _schedule.EndClaim();
            }
        }
    }

    private async Task<bool> ClaimAsync(int room, Dictionary<string, int> rooms, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var now = clock.GetUtcNow();
        // A read first: the claim is a write, and on SQLite every write waits its turn behind the events being ingested.
        // Per endpoint, on the due index (endpoint, next attempt), so the look walks only an endpoint's due rows.
        var full = rooms.Where(r => r.Value == 0).Select(r => r.Key).ToList();
        var due = await db.WebhookEndpoints
            .Where(e => !full.Contains(e.Id))
            .AnyAsync(e => db.WebhookDeliveries.Any(d => d.EndpointId == e.Id && d.Status == DeliveryStatus.Pending
                && d.NextAttemptAt <= now && (d.ClaimedUntil == null || d.ClaimedUntil < now)), ct);
        if (!due)
        {
            return false;
        }
        var until = now + _options.ClaimLease;
        // The claim and what goes with it are one transaction: on SQLite it takes the writer's turn as a transaction
        // (see SqliteWriteQueue), and a delivery of a disabled endpoint is failed with the claim that found it.
        db.Database.AutoSavepointsEnabled = false;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var ids = await ClaimAsync(db, InstanceId, now, _options.ClaimLease, room, rooms, Limits.MaxHeldPerEndpoint, ct);
        if (ids.Count == 0)
        {
            return false;
        }
        // One read for the whole claim, each endpoint materialised once however many of its deliveries came.
        var found = await db.WebhookDeliveries.AsNoTrackingWithIdentityResolution()
            .Where(d => ids.Contains(d.Id))
            .Include(d => d.Message).Include(d => d.Endpoint)
            .ToListAsync(ct);
        foreach (var row in found.Where(r => !r.Endpoint!.Enabled))
        {
            await EndpointState.FailDisabledAsync(db, row.Id, row.Endpoint!, now, ct);
        }
        await transaction.CommitAsync(ct);
        var order = ids.Select((id, index) => (id, index)).ToDictionary(p => p.id, p => p.index);
        Hold(found.Where(r => r.Endpoint!.Enabled && r.Status == DeliveryStatus.Pending)
            .OrderBy(r => order[r.Id])
            .Select(r => new ClaimedDelivery(r.Id, r.Message!, r.Endpoint!, until, r.Attempts))
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
            _schedule.Hold(claimed, reclaimed);
        }
        StartReady();
    }

    /// <summary>Starts what the schedule lets start now.</summary>
    private void StartReady()
    {
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }
            foreach (var delivery in _schedule.Start(clock.GetUtcNow()))
            {
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
        var sent = false;
        try
        {
            var outcome = await sender.AttemptAsync(delivery, _abandon.Token);
            Interlocked.Increment(ref _attempts);
            lock (_lock)
            {
                _schedule.Sent(delivery);
            }
            sent = true;
            StartReady();
            if (_wantsRoom)
            {
                WakeIfLow();
            }
            await recorder.RecordAsync(InstanceId, delivery, outcome, _abandon.Token);
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
            lock (_lock)
            {
                _schedule.Release(delivery, sent);
                _inFlight.TryRemove(delivery.Id, out _);
            }
            StartReady();
            // A retry may be due at once, and what was recorded left room for more.
            WakeIfLow();
        }
    }

    private void WakeIfLow()
    {
        bool low;
        lock (_lock)
        {
            low = _schedule.LowOnWork;
        }
        if (low)
        {
            _wantsRoom = false;
            signal.Poke();
        }
    }

    /// <summary>
    /// Leases up to <paramref name="limit"/> due deliveries, oldest first, of each endpoint at most its room in
    /// <paramref name="rooms"/> (none of one at 0), or <paramref name="perEndpoint"/> of an endpoint not listed. Each
    /// endpoint's due deliveries are read on their own from the due index, so however large one endpoint's backlog, the
    /// others' are found as fast. Raw SQL because the claim must be one statement.
    /// </summary>
    internal static async Task<List<string>> ClaimAsync(ReferloopDb db, string instanceId, DateTimeOffset now, TimeSpan lease,
        int limit, IReadOnlyDictionary<string, int> rooms, int perEndpoint, CancellationToken ct)
    {
        var until = now + lease;
        if (!db.OnSqlite)
        {
            // SKIP LOCKED: two instances never take the same row, and neither waits for the other. Each endpoint's read
            // locks no more rows than the claim could take.
            var endpointIds = rooms.Keys.ToArray();
            var endpointRooms = rooms.Values.ToArray();
            return await db.Database.SqlQuery<string>($"""
                WITH rooms AS (SELECT * FROM unnest({endpointIds}::text[], {endpointRooms}::integer[]) AS r("EndpointId", "Room")),
                picked AS (
                    SELECT d."Id", d."NextAttemptAt"
                    FROM webhook_endpoints AS e
                    LEFT JOIN rooms AS r ON r."EndpointId" = e."Id"
                    CROSS JOIN LATERAL (
                        SELECT x."Id", x."NextAttemptAt" FROM webhook_deliveries AS x
                        WHERE x."EndpointId" = e."Id" AND x."Status" = 'pending' AND x."NextAttemptAt" <= {now}
                          AND (x."ClaimedUntil" IS NULL OR x."ClaimedUntil" < {now})
                        ORDER BY x."NextAttemptAt"
                        LIMIT LEAST(COALESCE(r."Room", {perEndpoint}), {limit})
                        FOR UPDATE SKIP LOCKED) AS d
                    WHERE COALESCE(r."Room", {perEndpoint}) > 0
                    ORDER BY d."NextAttemptAt"
                    LIMIT {limit})
                UPDATE webhook_deliveries AS w SET "ClaimedBy" = {instanceId}, "ClaimedUntil" = {until}
                FROM picked WHERE w."Id" = picked."Id"
                RETURNING w."Id" AS "Value"
                """).ToListAsync(ct);
        }
        // SQLite stores instants as UTC ticks (see UtcTicksConverter); one writer at a time (SqliteWriteQueue), so no row
        // locks needed. Its LIMIT cannot name the endpoint's row, so each endpoint's read stops at the most any can take
        // and its rows past its own room are left by their rank.
        var nowTicks = now.UtcTicks;
        var untilTicks = until.UtcTicks;
        var roomsJson = System.Text.Json.JsonSerializer.Serialize(rooms);
        var most = Math.Min(perEndpoint, limit);
        return await db.Database.SqlQuery<string>($"""
            WITH rooms AS (SELECT key AS "EndpointId", value AS "Room" FROM json_each({roomsJson})),
            ranked AS (
                SELECT d."Id", d."NextAttemptAt", COALESCE(r."Room", {perEndpoint}) AS "Room",
                       row_number() OVER (PARTITION BY e."Id" ORDER BY d."NextAttemptAt") AS "Rank"
                FROM webhook_endpoints AS e
                LEFT JOIN rooms AS r ON r."EndpointId" = e."Id"
                JOIN webhook_deliveries AS d ON d."Id" IN (
                    SELECT x."Id" FROM webhook_deliveries AS x
                    WHERE x."EndpointId" = e."Id" AND x."Status" = 'pending' AND x."NextAttemptAt" <= {nowTicks}
                      AND (x."ClaimedUntil" IS NULL OR x."ClaimedUntil" < {nowTicks})
                    ORDER BY x."NextAttemptAt"
                    LIMIT {most})
                WHERE COALESCE(r."Room", {perEndpoint}) > 0)
            UPDATE webhook_deliveries SET "ClaimedBy" = {instanceId}, "ClaimedUntil" = {untilTicks}
            WHERE "Id" IN (SELECT "Id" FROM ranked WHERE "Rank" <= "Room" ORDER BY "NextAttemptAt" LIMIT {limit})
            RETURNING "Id" AS "Value"
            """).ToListAsync(ct);
    }
}

/// <summary>A fan-out written in a transaction: the deliveries it leased to this instance, and how many mails it wrote.</summary>
public sealed record FannedOut(List<ClaimedDelivery> Claimed, int Mails);
