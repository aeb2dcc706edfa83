namespace Referloop.Webhooks;

/// <summary>
/// A delivery this instance holds, with what sending it needs, until its lease ends; <paramref name="Attempts"/> is
/// how many attempts were recorded when it was leased.
/// </summary>
public sealed record ClaimedDelivery(string Id, OutboxMessage Message, WebhookEndpoint Endpoint, DateTimeOffset ClaimedUntil,
    int Attempts = 0);

/// <summary>
/// What a lease renewal asks about: every held delivery (<paramref name="Ids"/>), and the ones waiting to start as they
/// were when it asked, so that <see cref="DeliverySchedule.Renewed"/> drops only what it read about.
/// </summary>
public sealed record HeldSnapshot(IReadOnlyList<string> Ids, IReadOnlyDictionary<string, ClaimedDelivery> Waiting);

/// <summary>
/// The bounds one instance delivers within (from <see cref="WebhookOptions"/>); <paramref name="ClaimEvery"/>: how often
/// a claim looks for due deliveries whatever the instance holds (retries, other instances' backlogs).
/// </summary>
public sealed record DeliveryLimits(int MaxConcurrency, int PerEndpoint, TimeSpan Timeout, TimeSpan ClaimLease,
    TimeSpan? ClaimEvery = null)
{
    public static DeliveryLimits From(WebhookOptions options) => new(Math.Max(1, options.MaxConcurrency),
        Math.Max(1, options.MaxConcurrencyPerEndpoint), options.Timeout, options.ClaimLease, options.PollInterval);

    /// <summary>
    /// Held unsent at most per endpoint: enough rounds of its slots that a backlog drains at the receiver's pace rather
    /// than the claims' (on PostgreSQL a fan-out of a backlog takes longer than two rounds of sends to a fast
    /// receiver), and few enough that a slow receiver's backlog stays in the database rather than here.
    /// </summary>
    public int MaxHeldPerEndpoint => PerEndpoint * 32;

    /// <summary>
    /// An endpoint with fewer than this waiting to start (half its <see cref="MaxHeldPerEndpoint"/>) is claimed for;
    /// one with more is stocked, and a claim passes it by.
    /// </summary>
    public int Restock => MaxHeldPerEndpoint / 2;

    /// <summary>
    /// Held at most over all endpoints, sent ones waiting for their record included, with the deliveries of stocked
    /// endpoints counting for at most half of it: a bound on memory and on what a lease renewal writes that slow
    /// receivers cannot take from the others.
    /// </summary>
    public int MaxHeld => Math.Max(MaxConcurrency * 16, MaxHeldPerEndpoint * 4);

    /// <summary>An attempt starts only with this much time left on its lease; closer to its end it is left to be claimed again.</summary>
    public TimeSpan StartMargin => TimeSpan.FromTicks(Math.Min(Timeout.Ticks, ClaimLease.Ticks / 2));
}

/// <summary>
/// Which of the deliveries an instance holds go out next: the pure part of the delivery engine. It keeps what the
/// instance holds (waiting, on the wire, waiting for its record) and decides, for a time it is given, which held
/// deliveries start: oldest first, within the overall and per-endpoint concurrency, an endpoint's requests per
/// second, and only with time left on their lease. It also says when a claim is worth making and for which endpoints:
/// each endpoint is stocked up to its own bound, so a slow receiver holds only its share and never keeps the others
/// from being claimed for. No I/O, no clock, no locks: the engine calls it under its one lock.
/// <para>
/// Leases can run out while a delivery is still in hand (a long wait for its record, a test's clock jump) and the
/// delivery can then be claimed again, by this instance, before its record commits. The schedule sorts that out: a
/// claim read before this instance's record of the delivery's last attempt is dropped (it would send it twice), and a
/// claim of a delivery still in hand is kept until that hand lets go.
/// </para>
/// </summary>
public sealed class DeliverySchedule(DeliveryLimits limits)
{
    /// <summary>Held and waiting to start, per endpoint in the order they came; <see cref="Waiting.Order"/> orders them across endpoints.</summary>
    private readonly Dictionary<string, Queue<Waiting>> _ready = [];
    private readonly Dictionary<string, Waiting> _waiting = [];
    private long _arrivals;
    private readonly HashSet<string> _held = [];
    private readonly Dictionary<string, int> _runningPerEndpoint = [];
    private readonly Dictionary<string, Queue<DateTimeOffset>> _startsPerEndpoint = [];
    private readonly Dictionary<string, int> _recordedDuringClaim = [];
    private readonly Dictionary<string, ClaimedDelivery> _claimedInHand = [];
    private int _running;
    private int _recording;
    private bool _claiming;
    private DateTimeOffset _nextClaim = DateTimeOffset.MinValue;

    // No waiting delivery's lease ends before this (it may be earlier than the earliest one: leases only grow and
    // deliveries only leave between walks), so a start before it need not look at each of them.
    private DateTimeOffset _earliestLease = DateTimeOffset.MaxValue;

    public DeliveryLimits Limits { get; } = limits;

    /// <summary>Deliveries held: waiting, on the wire, or sent and waiting for their record.</summary>
    public int Held => _held.Count;

    /// <summary>Attempts on the wire.</summary>
    public int Running => _running;

    /// <summary>
    /// How many more deliveries this instance may take (fan-out or claim), over all endpoints: what it holds counts
    /// against <see cref="DeliveryLimits.MaxHeld"/>, the unsent deliveries of stocked endpoints for at most half of it,
    /// so that however many receivers are slow, the others have room.
    /// </summary>
    public int Room
    {
        get
        {
            var stocked = 0;
            foreach (var (endpointId, queue) in _ready)
            {
                if (Stocked(queue))
                {
                    stocked += queue.Count + _runningPerEndpoint.GetValueOrDefault(endpointId);
                }
            }
            return Math.Max(0, Limits.MaxHeld - (_held.Count - stocked) - Math.Min(stocked, Limits.MaxHeld / 2));
        }
    }

    /// <summary>How many more deliveries of one endpoint this instance may take: its bound less what it holds unsent.</summary>
    public int RoomFor(string endpointId) => Math.Max(0, Limits.MaxHeldPerEndpoint - WaitingFor(endpointId)
        - _runningPerEndpoint.GetValueOrDefault(endpointId));

    private int WaitingFor(string endpointId) => _ready.TryGetValue(endpointId, out var queue) ? queue.Count : 0;

    /// <summary>An endpoint with <see cref="DeliveryLimits.Restock"/> or more waiting to start: a claim passes it by.</summary>
    private bool Stocked(Queue<Waiting> waiting) => waiting.Count >= Limits.Restock;

    /// <summary>
    /// Room for a claim at <paramref name="now"/>: while <see cref="LowOnWork"/>, and otherwise every
    /// <see cref="DeliveryLimits.ClaimEvery"/>, for endpoints this instance holds nothing of (their retries, another
    /// instance's backlog).
    /// </summary>
    public int ClaimRoom(DateTimeOffset now) => LowOnWork || now >= _nextClaim ? Room : 0;

    /// <summary>
    /// Some endpoint is running low: nothing waits to start, or an endpoint being sent to has fewer than
    /// <see cref="DeliveryLimits.Restock"/> waiting, so its next rounds are claimed while the current ones are on the
    /// wire. Stocked endpoints alone never ask for a claim, however slowly they drain.
    /// </summary>
    public bool LowOnWork
    {
        get
        {
            if (_ready.Count == 0)
            {
                return true;
            }
            foreach (var queue in _ready.Values)
            {
                if (!Stocked(queue))
                {
                    return true;
                }
            }
            foreach (var endpointId in _runningPerEndpoint.Keys)
            {
                if (!_ready.ContainsKey(endpointId))
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>
    /// How many deliveries a claim may take of each endpoint this instance holds some of: none of a stocked one (with
    /// <see cref="DeliveryLimits.Restock"/> or more waiting to start), the rest of its bound (<see cref="RoomFor"/>) of
    /// the others. An endpoint not listed may give a whole <see cref="DeliveryLimits.MaxHeldPerEndpoint"/>.
    /// </summary>
    public Dictionary<string, int> ClaimRooms()
    {
        var rooms = new Dictionary<string, int>();
        foreach (var (endpointId, queue) in _ready)
        {
            rooms[endpointId] = Stocked(queue) ? 0 : RoomFor(endpointId);
        }
        foreach (var endpointId in _runningPerEndpoint.Keys)
        {
            rooms.TryAdd(endpointId, RoomFor(endpointId));
        }
        return rooms;
    }

    /// <summary>What a lease renewal asks about: everything held, and the waiting deliveries as they are now.</summary>
    public HeldSnapshot Snapshot() => new([.. _held], _waiting.ToDictionary(w => w.Key, w => w.Value.Delivery));

    public bool Holds(string deliveryId) => _held.Contains(deliveryId);

    /// <summary>
    /// A claim is being read at <paramref name="now"/>: records made meanwhile are remembered until
    /// <see cref="EndClaim"/>, and the next claim that no endpoint asks for comes one <see cref="DeliveryLimits.ClaimEvery"/> later.
    /// </summary>
    public void BeginClaim(DateTimeOffset now)
    {
        _claiming = true;
        _nextClaim = now + (Limits.ClaimEvery ?? TimeSpan.FromSeconds(1));
    }

    public void EndClaim()
    {
        _claiming = false;
        _recordedDuringClaim.Clear();
    }

    /// <summary>
    /// Takes deliveries leased to this instance. <paramref name="reclaimed"/>: they come from a claim, which may have
    /// read a delivery before this instance's record of its last attempt committed.
    /// </summary>
    public void Hold(IEnumerable<ClaimedDelivery> claimed, bool reclaimed = false)
    {
        foreach (var delivery in claimed)
        {
            if (reclaimed && _recordedDuringClaim.TryGetValue(delivery.Id, out var recorded) && delivery.Attempts < recorded)
            {
                continue;
            }
            if (_held.Add(delivery.Id))
            {
                Wait(delivery);
                continue;
            }
            // A lease that ran out while this instance still held it comes back to its holder, under the new lease.
            if (_waiting.TryGetValue(delivery.Id, out var waiting))
            {
                waiting.Delivery = delivery;
                Leased(delivery);
            }
            else if (reclaimed)
            {
                _claimedInHand[delivery.Id] = delivery;
            }
        }
    }

    /// <summary>
    /// The held deliveries that start at <paramref name="now"/>, oldest first, now counted as running: while slots
    /// are free, below each endpoint's concurrency and rate, with time left on the lease (the others are let go of).
    /// </summary>
    public List<ClaimedDelivery> Start(DateTimeOffset now)
    {
        LetGoOfExpired(now);
        var started = new List<ClaimedDelivery>();
        while (_running < Limits.MaxConcurrency && NextToStart(now) is { } queue)
        {
            var delivery = queue.Dequeue().Delivery;
            _waiting.Remove(delivery.Id);
            var endpoint = delivery.Endpoint;
            _runningPerEndpoint[endpoint.Id] = _runningPerEndpoint.GetValueOrDefault(endpoint.Id) + 1;
            _running++;
            if (endpoint.RateLimitPerSecond is not null)
            {
                Starts(endpoint.Id).Enqueue(now);
            }
            started.Add(delivery);
        }
        foreach (var (endpointId, queue) in _ready)
        {
            if (queue.Count == 0)
            {
                _ready.Remove(endpointId);
            }
        }
        return started;
    }

    /// <summary>
    /// Lets go of the waiting deliveries with too little of their lease left, wherever they wait: they no longer take
    /// room from a claim, and whoever claims them next sends them.
    /// </summary>
    private void LetGoOfExpired(DateTimeOffset now)
    {
        var latest = now + Limits.StartMargin;
        if (latest <= _earliestLease)
        {
            return;
        }
        var earliest = DateTimeOffset.MaxValue;
        foreach (var queue in _ready.Values)
        {
            var expired = false;
            foreach (var waiting in queue)
            {
                var until = waiting.Delivery.ClaimedUntil;
                expired |= latest > until;
                if (latest <= until && until < earliest)
                {
                    earliest = until;
                }
            }
            if (!expired)
            {
                continue;
            }
            var kept = queue.ToList();
            queue.Clear();
            foreach (var waiting in kept)
            {
                if (latest > waiting.Delivery.ClaimedUntil)
                {
                    _waiting.Remove(waiting.Delivery.Id);
                    _held.Remove(waiting.Delivery.Id);
                }
                else
                {
                    queue.Enqueue(waiting);
                }
            }
        }
        _earliestLease = earliest;
    }

    private void Leased(ClaimedDelivery delivery)
    {
        if (delivery.ClaimedUntil < _earliestLease)
        {
            _earliestLease = delivery.ClaimedUntil;
        }
    }

    /// <summary>
    /// The endpoint queue whose first delivery came first among those whose endpoint has a free slot and room in its
    /// rate.
    /// </summary>
    private Queue<Waiting>? NextToStart(DateTimeOffset now)
    {
        Queue<Waiting>? next = null;
        foreach (var (endpointId, queue) in _ready)
        {
            if (queue.Count == 0 || (next is not null && next.Peek().Order < queue.Peek().Order)
                || _runningPerEndpoint.GetValueOrDefault(endpointId) >= Limits.PerEndpoint
                || !RateAllows(queue.Peek().Delivery.Endpoint, now))
            {
                continue;
            }
            next = queue;
        }
        return next;
    }

    private void Wait(ClaimedDelivery delivery)
    {
        Leased(delivery);
        var waiting = new Waiting(++_arrivals, delivery);
        _waiting[delivery.Id] = waiting;
        if (!_ready.TryGetValue(delivery.Endpoint.Id, out var queue))
        {
            _ready[delivery.Endpoint.Id] = queue = new Queue<Waiting>();
        }
        queue.Enqueue(waiting);
    }

    /// <summary>A held delivery waiting to start; a claim made again while it waits gives it its new lease in place.</summary>
    private sealed class Waiting(long order, ClaimedDelivery delivery)
    {
        public long Order { get; } = order;
        public ClaimedDelivery Delivery { get; set; } = delivery;
    }

    /// <summary>
    /// When a delivery held back only by its endpoint's rate may start, if any is: the engine wakes then rather than
    /// at its next poll.
    /// </summary>
    public DateTimeOffset? NextRateSlot(DateTimeOffset now)
    {
        DateTimeOffset? next = null;
        foreach (var queue in _ready.Values)
        {
            if (queue.Count > 0 && queue.Peek().Delivery.Endpoint is { RateLimitPerSecond: not null } endpoint && !RateAllows(endpoint, now)
                && _startsPerEndpoint.TryGetValue(endpoint.Id, out var starts) && starts.Count > 0)
            {
                var at = starts.Peek() + TimeSpan.FromSeconds(1);
                next = next is { } earlier && earlier < at ? earlier : at;
            }
        }
        return next;
    }

    /// <summary>At most <see cref="WebhookEndpoint.RateLimitPerSecond"/> starts in any second.</summary>
    private bool RateAllows(WebhookEndpoint endpoint, DateTimeOffset now)
    {
        if (endpoint.RateLimitPerSecond is not { } rate)
        {
            return true;
        }
        var starts = Starts(endpoint.Id);
        while (starts.Count > 0 && starts.Peek() <= now - TimeSpan.FromSeconds(1))
        {
            starts.Dequeue();
        }
        return starts.Count < Math.Max(1, rate);
    }

    private Queue<DateTimeOffset> Starts(string endpointId)
    {
        if (!_startsPerEndpoint.TryGetValue(endpointId, out var starts))
        {
            _startsPerEndpoint[endpointId] = starts = new Queue<DateTimeOffset>();
        }
        return starts;
    }

    /// <summary>The attempt is done on the wire: its slot is free while it waits for its record, and it stays held.</summary>
    public void Sent(ClaimedDelivery delivery)
    {
        FreeSlot(delivery);
        _recording++;
    }

    /// <summary>
    /// Lets go of a delivery: its attempt is recorded (<paramref name="wasSent"/>: <see cref="Sent"/> came first), or it
    /// was cut short before that. A claim of it made while it was in hand is held now, if it was read after the record.
    /// </summary>
    public void Release(ClaimedDelivery delivery, bool wasSent)
    {
        if (wasSent)
        {
            _recording--;
        }
        else
        {
            FreeSlot(delivery);
        }
        if (_claiming)
        {
            _recordedDuringClaim[delivery.Id] = delivery.Attempts + 1;
        }
        _held.Remove(delivery.Id);
        if (_claimedInHand.Remove(delivery.Id, out var again) && again.Attempts > delivery.Attempts && _held.Add(again.Id))
        {
            Wait(again);
        }
    }

    /// <summary>
    /// Leases renewed to <paramref name="until"/>: the waiting deliveries among <paramref name="kept"/> (renewed and
    /// still pending) keep their place longer. One that waited when the renewal asked (<paramref name="asked"/>), still
    /// waits as it did then, and is not kept is dropped unsent: its lease is another instance's now, or it was
    /// cancelled, erased or its endpoint disabled meanwhile. The dropped ones are returned, for their holder to let go
    /// of their claims. A started one stays held whatever its row says: its attempt lets go of it when recorded.
    /// </summary>
    public List<string> Renewed(HeldSnapshot asked, IReadOnlySet<string> kept, DateTimeOffset until)
    {
        var dropped = new List<string>();
        foreach (var (id, then) in asked.Waiting)
        {
            // A delivery that started meanwhile, or came back under a new claim, is not what the renewal read.
            if (!kept.Contains(id) && _waiting.TryGetValue(id, out var waiting) && ReferenceEquals(waiting.Delivery, then))
            {
                dropped.Add(id);
            }
        }
        Drop(dropped);
        foreach (var id in kept)
        {
            if (_waiting.TryGetValue(id, out var waiting) && waiting.Delivery.ClaimedUntil < until)
            {
                waiting.Delivery = waiting.Delivery with { ClaimedUntil = until };
            }
        }
        return dropped;
    }

    /// <summary>
    /// Lets go of every delivery waiting to start (on stop), and returns them, for the engine to hand their claims
    /// back; the started ones stay held until they are recorded.
    /// </summary>
    public List<string> LetGoOfWaiting()
    {
        var waiting = _waiting.Keys.ToList();
        Drop(waiting);
        return waiting;
    }

    /// <summary>Lets go of waiting deliveries, wherever they wait.</summary>
    private void Drop(IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0)
        {
            return;
        }
        var dropping = ids.ToHashSet();
        foreach (var queue in _ready.Values)
        {
            var kept = queue.Where(w => !dropping.Contains(w.Delivery.Id)).ToList();
            if (kept.Count == queue.Count)
            {
                continue;
            }
            queue.Clear();
            foreach (var waiting in kept)
            {
                queue.Enqueue(waiting);
            }
        }
        foreach (var id in dropping)
        {
            if (_waiting.Remove(id))
            {
                _held.Remove(id);
            }
        }
    }

    private void FreeSlot(ClaimedDelivery delivery)
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

    // ---------------------------------------------------------------- what an attempt leads to

    /// <summary>
    /// What one attempt leads to, given its delivery and endpoint as they stand: the delivery's next state (done,
    /// failed, or when to try again on <see cref="RetrySchedule"/>), the endpoint's health (failing since when, or
    /// disabled: 410 Gone, or failing for <paramref name="disableAfterFailingFor"/> unless it retries until
    /// acknowledged) and whether <c>message.attempt.exhausted</c> is raised. Null when the attempt is not recorded:
    /// the delivery was cancelled meanwhile. <paramref name="jitter"/> in [-1, 1] spreads the retry time;
    /// <paramref name="forceRetry"/> keeps an acknowledged delivery going (its acknowledgement could not be recorded).
    /// </summary>
    public static AttemptResult? Record(DeliveryState delivery, EndpointHealth endpoint, string messageType, AttemptOutcome outcome,
        DateTimeOffset now, TimeSpan disableAfterFailingFor, double jitter, bool forceRetry = false)
    {
        if (delivery.Status == DeliveryStatus.Cancelled)
        {
            return null;
        }
        var next = delivery with
        {
            Attempts = delivery.Attempts + 1,
            Round = delivery.Round + 1,
            LastStatusCode = outcome.StatusCode,
            LastError = outcome.Error,
        };
        var health = endpoint;
        string? disableCode = null;
        string? disableDetail = null;
        var exhausted = false;
        if (outcome.Succeeded && !forceRetry)
        {
            next = next with { Status = DeliveryStatus.Succeeded, CompletedAt = now };
            health = health with { FailingSince = null };
        }
        else if (outcome.Gone)
        {
            next = next with { Status = DeliveryStatus.Failed, CompletedAt = now };
            (disableCode, disableDetail) = (DisabledReason.Gone, "The receiver answered 410 Gone.");
        }
        else if (delivery.Status != DeliveryStatus.Pending)
        {
            // Failed with its endpoint while this attempt was on the wire: it stays so.
            health = health with { FailingSince = health.FailingSince ?? now };
        }
        else
        {
            health = health with { FailingSince = health.FailingSince ?? now };
            var untilAcknowledged = !delivery.IsTest && endpoint.RetryUntilAcknowledged && messageType == EventTypes.ReferralApproved;
            // A receiver's Retry-After says when to try again, not whether: the schedule still ends the delivery.
            var wait = RetrySchedule.After(next.Round, untilAcknowledged, jitter) is { } scheduled ? outcome.RetryAfter ?? scheduled : (TimeSpan?)null;
            if (!endpoint.RetryUntilAcknowledged && now - health.FailingSince >= disableAfterFailingFor)
            {
                next = next with { Status = DeliveryStatus.Failed, CompletedAt = now };
                (disableCode, disableDetail) = (DisabledReason.Failing, $"Every attempt failed since {health.FailingSince:O}.");
            }
            else if (wait is { } delay)
            {
                next = next with { NextAttemptAt = now + delay };
            }
            else
            {
                next = next with { Status = DeliveryStatus.Failed, CompletedAt = now };
                // Not for test messages, and never for an operational event: otherwise an endpoint that fails to take
                // message.attempt.exhausted would raise another one for every one it fails to take.
                exhausted = !delivery.IsTest && !EventTypes.IsOperational(messageType);
            }
        }
        // Even while delivering an operational event: a disabling is a change of state that happens once per endpoint
        // until someone enables it again, so it cannot repeat by itself.
        var disables = disableCode is not null && endpoint.Enabled;
        if (disables)
        {
            health = health with { Enabled = false };
        }
        return new AttemptResult(next, health, disables ? new Disabling(disableCode!, disableDetail!) : null, exhausted,
            Acknowledged: next.Status == DeliveryStatus.Succeeded && !delivery.IsTest);
    }
}

/// <summary>A delivery's recorded state, as an attempt result reads and changes it.</summary>
public sealed record DeliveryState(string Id, string EndpointId, string Status, int Attempts, int Round, bool IsTest,
    DateTimeOffset NextAttemptAt, int? LastStatusCode, string? LastError, DateTimeOffset? CompletedAt);

/// <summary>An endpoint's health, as attempt results read and change it.</summary>
public sealed record EndpointHealth(string Id, bool Enabled, bool RetryUntilAcknowledged, DateTimeOffset? FailingSince);

/// <summary>Why an attempt disabled its endpoint: <paramref name="Reason"/> is a <see cref="DisabledReason"/>.</summary>
public sealed record Disabling(string Reason, string Detail);

/// <summary>
/// What one attempt leads to: the delivery and endpoint after it, the endpoint's disabling if this attempt disabled
/// it, whether <c>message.attempt.exhausted</c> is raised, and whether the receiver acknowledged a real message.
/// </summary>
public sealed record AttemptResult(DeliveryState Delivery, EndpointHealth Endpoint, Disabling? Disabled, bool Exhausted, bool Acknowledged);
