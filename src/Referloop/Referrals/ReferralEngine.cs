using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Hosting;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>A referral changed concurrently; the unit of work is retried from a fresh read.</summary>
internal class ConcurrentChangeException(string message) : Exception(message);

/// <summary>
/// An event of a batch that did not read what its events repeat repeats one recorded or waiting: the batch is run again
/// at once, reading first.
/// </summary>
internal sealed class UnreadRepeatException(string message) : ConcurrentChangeException(message);

/// <summary>The answer of a referral command (approve, void, qualify): the referral after it, or why not.</summary>
public sealed record ReferralCommandResult(Referral? Referral, string? Conflict, bool NotFound = false);

/// <summary>
/// The referral engine: runs each event and referral command as one unit of work: read its facts
/// (<see cref="ReferralStore"/>), decide (<see cref="ReferralCore"/>, pure), write what was decided with every
/// outbound message in the same transaction; and again from a fresh read when a concurrent change got there first.
/// </summary>
public sealed class ReferralEngine(
    ReferloopDb db,
    TimeProvider clock,
    ReferralCore core,
    ReferralStore store,
    OutboxSignal outbox,
    DeliveryEngine deliveries,
    CouponRequests couponRequests)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    // Set when a reward of the unit of work awaits a coupon: the coupon requests are woken once it has committed.
    private bool _couponsAwaited;

    // Set when the unit of work wrote a message an endpoint takes for the delivery engine's own fan-out: the engine is
    // woken once it has committed.
    private bool _messagesToDeliver;

    // The fan-outs the unit of work wrote itself: handed to the delivery engine once it has committed.
    private readonly List<FannedOut> _fannedOut = [];

    /// <summary>
    /// Whether the last batch of <see cref="TrackAsync"/> met an event recorded or waiting before one of its own (a
    /// repeat, or a browser's report of the same order): what tells <see cref="OrderKeyed.RepeatWatch"/> to read first.
    /// </summary>
    public bool MetEarlierEvent { get; private set; }

    // ---------------------------------------------------------------- events

    /// <summary>
    /// Records and decides a batch of events in one transaction: events that repeat an earlier one (its order id or
    /// idempotency key) are answered with its outcome; the facts of the others are read at once, the core decides them
    /// in order, each seeing what the ones before it changed, and everything is written together, the events' own rows
    /// included. The requests must not share a friend, an order id or an idempotency key, and a refund comes alone
    /// (<see cref="EventIngest"/> batches them so). Without <paramref name="lookForRepeats"/>, when repeats are rare,
    /// the batch does not read what its events repeat: an event's insert does not take place when it repeats one, and
    /// the batch then runs again, reading first (accepted events, which have an inbox row to find, always read).
    /// </summary>
    public async Task<EventOutcome[]> TrackAsync(IReadOnlyList<TrackRequest> requests, CancellationToken ct, bool lookForRepeats = true)
    {
        if (requests.Any(r => r.IsRefund))
        {
            return requests is [var refund]
                ? [await RefundAsync(refund, ct)]
                : throw new ArgumentException("A refund is decided in a unit of work of its own, not in a batch", nameof(requests));
        }
        var repeatsRead = lookForRepeats || requests.Any(r => r.EventId is not null);
        return await InTransactionAsync(async () =>
        {
            var now = clock.GetUtcNow();
            var outcomes = new EventOutcome[requests.Count];
            var decide = new List<(int Index, EventToDecide Item, bool Confirmed, bool Repeat)>();
            var fresh = new List<TrackedEvent>();
            var earlierEvents = repeatsRead ? await store.EarlierEventsAsync(requests, ct) : new EarlierEvent?[requests.Count];
            MetEarlierEvent = earlierEvents.Any(e => e is not null);
            var accepted = requests.Select(r => r.EventId).OfType<string>().ToList();
            // Waiting events processed in place of a request of the batch (by index), and requests repeating one of them.
            var adopted = new Dictionary<string, int>();
            var repeatsOfAdopted = new List<(int Index, int Of)>();
            // Repeats answered without the earlier event's outcome (see OthersRepeat).
            var bare = new List<int>();
            for (var i = 0; i < requests.Count; i++)
            {
                var request = requests[i];
                var tracked = request.ToEvent(now);
                var couponCode = request.Input.CouponCode;
                var (confirmed, repeat) = (false, false);
                if (earlierEvents[i] is { Recorded: { } earlier } && !Squats(earlier.Source, earlier.Email, tracked))
                {
                    if (!await ConfirmsAsync(request.Campaign, earlier, tracked, ct))
                    {
                        outcomes[i] = OthersRepeat(tracked, earlier.Email) ? BareRepeat(earlier.Id) : Replay(earlier);
                        continue;
                    }
                    // The server reports what a browser reported first: the browser's event is processed again as the server's.
                    tracked = earlier;
                    confirmed = true;
                }
                else if (earlierEvents[i] is { Waiting: { } waiting }
                         && !Squats(waiting.Source, Participant.NormaliseEmail(waiting.Input.Email ?? ""), tracked))
                {
                    if (OthersRepeat(tracked, Participant.NormaliseEmail(waiting.Input.Email ?? "")))
                    {
                        bare.Add(i);
                    }
                    if (adopted.TryGetValue(waiting.EventId!, out var of))
                    {
                        // Another request of the batch (by order id, this one by key, or the other way) took it already.
                        repeatsOfAdopted.Add((i, of));
                        continue;
                    }
                    // Accepted before this request and still waiting: it is processed now, under its own id, and this
                    // request repeats it; or, from the server, confirms what a browser reported.
                    var first = waiting.ToEvent(now);
                    if (Confirms(request.Campaign, first, tracked))
                    {
                        first.Source = EventSource.Server;
                        couponCode ??= waiting.Input.CouponCode;
                    }
                    else
                    {
                        repeat = true;
                        couponCode = waiting.Input.CouponCode;
                    }
                    tracked = first;
                    adopted[first.Id] = i;
                    accepted.Add(first.Id);
                    fresh.Add(tracked);
                }
                else
                {
                    if (earlierEvents[i] is { Recorded: { } squatted })
                    {
                        await store.TakeOrderFromAsync(squatted.Id, ct);
                    }
                    fresh.Add(tracked);
                }
                decide.Add((i, new EventToDecide(request.Campaign, tracked, couponCode), confirmed, repeat));
            }
            var stillWaiting = await store.ForgetAcceptedAsync(accepted, ct);
            if (adopted.Keys.Any(id => !stillWaiting.Contains(id)))
            {
                throw new ConcurrentChangeException("A waiting event this batch adopted left the inbox since it was read");
            }
            // An accepted event whose row is gone was erased with its person after it was read (it may have waited in
            // memory): processing it would bring the person back. It is dropped, as the erasure dropped it.
            foreach (var (index, item, _, _) in decide.Where(d => requests[d.Index].EventId is { } id && !stillWaiting.Contains(id)))
            {
                fresh.Remove(item.Event);
                outcomes[index] = new EventOutcome(item.Event.Id, false, false, null, ErasedReason, null, [], null);
            }
            decide.RemoveAll(d => outcomes[d.Index] is not null);
            if (decide.Count == 0)
            {
                await store.KeepAnswersAsync(requests, outcomes, stillWaiting, now, ct);
                return outcomes;
            }

            var batch = await store.LoadForEventsAsync(decide.Select(d => d.Item).ToList(), now, ct);
            foreach (var (index, item, confirmed, repeat) in decide)
            {
                var (outcome, changes) = core.Track(batch.FactsFor(item), item.Event, item.CouponCode);
                batch.Apply(changes);
                outcomes[index] = repeat ? outcome with { Duplicate = true } : outcome;
                if (confirmed)
                {
                    // The browser's event row exists and takes what processing added to it.
                    var row = db.Events.Attach(item.Event);
                    row.Property(e => e.ParticipantId).IsModified = true;
                    row.Property(e => e.ReferralId).IsModified = true;
                    row.Property(e => e.Outcome).IsModified = true;
                }
            }
            foreach (var (index, of) in repeatsOfAdopted)
            {
                outcomes[index] = outcomes[of] with { Duplicate = true };
            }
            foreach (var index in bare)
            {
                outcomes[index] = BareRepeat(outcomes[index].EventId);
            }
            batch.Changes.NewEvents.AddRange(fresh);
            try
            {
                await WriteAsync(batch.Changes, now, ct, repeatsRead);
            }
            catch (UnreadRepeatException)
            {
                repeatsRead = true;
                throw;
            }
            await store.KeepAnswersAsync(requests, outcomes, stillWaiting, now, ct);
            return outcomes;
        }, ct);
    }

    /// <summary>
    /// Records and decides a refund or chargeback: a repeat (the same order refunded before, or the same idempotency
    /// key) is answered with the first outcome; an order no purchase has is answered without recording anything.
    /// </summary>
    private Task<EventOutcome> RefundAsync(TrackRequest request, CancellationToken ct) =>
        InTransactionAsync(async () =>
        {
            var now = clock.GetUtcNow();
            var orderId = request.OrderId!;
            if (await store.EarlierRefundAsync(request.Campaign.Id, orderId, request.IdempotencyKey, ct) is { } earlier)
            {
                return Replay(earlier);
            }
            var facts = await store.LoadForRefundAsync(request.Campaign, orderId, now, ct);
            var refund = request.ToRefund(now, facts.RefundedPurchase);
            var (outcome, changes) = core.Refund(facts, refund);
            if (outcome.Refund?.Effect == RefundEffect.UnknownOrder)
            {
                return outcome;
            }
            changes.NewEvents.Add(refund);
            await WriteAsync(changes, now, ct);
            return outcome;
        }, ct);

    /// <summary>
    /// Whether a server event with the order id or idempotency key of an earlier browser event is the confirmation
    /// that a campaign with <c>fraud.browserConversions = confirm</c> waits for. The conditional update lets exactly one
    /// of two concurrent confirmations through; the earlier event is then processed and saved again.
    /// </summary>
    private async Task<bool> ConfirmsAsync(Campaign campaign, TrackedEvent earlier, TrackedEvent confirmation, CancellationToken ct)
    {
        if (!Confirms(campaign, earlier, confirmation))
        {
            return false;
        }
        var claimed = await db.Events.Where(e => e.Id == earlier.Id && e.Source == EventSource.Browser)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Source, EventSource.Server), ct);
        if (claimed == 0)
        {
            return false;
        }
        earlier.Source = EventSource.Server;
        return true;
    }

    private static bool Confirms(Campaign campaign, TrackedEvent earlier, TrackedEvent confirmation) =>
        campaign.Fraud.BrowserConversions == BrowserConversions.Confirm && confirmation.Source == EventSource.Server
        && earlier.Source == EventSource.Browser && earlier.Type == confirmation.Type;

    /// <summary>The outcome of an accepted event that was erased with its person before it was processed.</summary>
    public const string ErasedReason = "erased before it was processed";

    /// <summary>
    /// Whether an earlier report of the order id (or key) that the server now reports came from a browser for another
    /// person: the publishable key is public, so a browser may report an order before the shop does, under its own
    /// e-mail and referral code. The order is the server's: its event is recorded and decided on its own (not answered
    /// as a repeat, nor taken as the confirmation of the browser's), and the browser's keeps its row and referral, held
    /// for review or confirmation, without the order id.
    /// </summary>
    private static bool Squats(string earlierSource, string earlierEmail, TrackedEvent server) =>
        earlierSource == EventSource.Browser && server.Source == EventSource.Server
        && !string.Equals(earlierEmail, server.Email, StringComparison.Ordinal);

    /// <summary>
    /// Whether a repeat comes from a browser reporting another person than the earlier event did: the publishable key
    /// is public and order ids are easy to guess, so such a repeat learns only that the order was reported, not its
    /// referral, advocate or the friend's coupon code.
    /// </summary>
    private static bool OthersRepeat(TrackedEvent repeat, string earlierEmail) =>
        repeat.Source == EventSource.Browser && !string.Equals(repeat.Email, earlierEmail, StringComparison.Ordinal);

    private static EventOutcome BareRepeat(string eventId) => new(eventId, true, false, null, null, null, [], null);

    private static EventOutcome Replay(TrackedEvent earlier) =>
        (earlier.Outcome is null ? null : JsonSerializer.Deserialize<EventOutcome>(earlier.Outcome, Json)) is { } outcome
            ? outcome with { Duplicate = true }
            : new EventOutcome(earlier.Id, true, earlier.ReferralId is not null, null, null, null, [], null);

    // ---------------------------------------------------------------- commands

    /// <summary>Qualifies a pending referral (the friend converted); approves it too when the campaign says so.</summary>
    public Task<ReferralCommandResult> QualifyAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, facts => core.Qualify(facts, reason), ct);

    /// <summary>Approves a referral by hand: a pending one is qualified first.</summary>
    public Task<ReferralCommandResult> ApproveAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, facts => core.Approve(facts, reason), ct);

    public Task<ReferralCommandResult> VoidAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, facts => core.Void(facts, reason), ct, withCountedConversionRewards: true);

    /// <summary>Approves a qualified referral whose holding period has ended; false when it is no longer due.</summary>
    public async Task<bool> ApproveDueAsync(string referralId, CancellationToken ct)
    {
        var result = await CommandAsync(referralId, core.ApproveDue, ct);
        return result.Conflict is null && !result.NotFound;
    }

    private async Task<ReferralCommandResult> CommandAsync(string referralId, Func<ReferralFacts, ReferralCore.CommandOutcome> command,
        CancellationToken ct, bool withCountedConversionRewards = false) =>
        await InTransactionAsync(async () =>
        {
            var now = clock.GetUtcNow();
            var facts = await store.LoadForReferralAsync(referralId, now, ct, withCountedConversionRewards);
            if (facts is null)
            {
                return new ReferralCommandResult(null, null, NotFound: true);
            }
            var (conflict, changes) = command(facts);
            if (conflict is null)
            {
                await WriteAsync(changes, now, ct);
            }
            return new ReferralCommandResult(facts.Referral, conflict);
        }, ct);

    private async Task WriteAsync(ReferralChanges changes, DateTimeOffset now, CancellationToken ct, bool repeatsRead = true)
    {
        if (await store.WriteAsync(changes, now, ct, repeatsRead) is { } fannedOut)
        {
            _fannedOut.Add(fannedOut);
        }
        _couponsAwaited |= changes.CouponsAwaited;
        _messagesToDeliver |= changes.Messages.Any(m => m.DispatchedAt is null);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction and retries it from a fresh read when it lost a race: a unique
    /// index (the same order id, friend or code arriving twice), a concurrent status change, or a deadlock.
    /// </summary>
    private async Task<T> InTransactionAsync<T>(Func<Task<T>> work, CancellationToken ct)
    {
        // A failed save fails the whole unit of work, which is retried from the start: a savepoint around every save
        // (two more statements each) would buy nothing. Statements that may fail and go on take their own savepoint.
        var savepoints = db.Database.AutoSavepointsEnabled;
        db.Database.AutoSavepointsEnabled = false;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                db.ChangeTracker.Clear();
                _couponsAwaited = false;
                _messagesToDeliver = false;
                _fannedOut.Clear();
                T result;
                try
                {
                    await using var transaction = await db.Database.BeginTransactionAsync(ct);
                    result = await work();
                    await transaction.CommitAsync(ct);
                }
                catch (Exception exception) when (attempt < 6 && RerunReason(exception) is { } reason)
                {
                    Telemetry.Reruns.Add(1, new KeyValuePair<string, object?>("reason", reason));
                    // A race is given time to end; an unread repeat needs only the read.
                    if (exception is not UnreadRepeatException)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 25) * attempt), ct);
                    }
                    continue;
                }
                // Committed: what follows hands work on and is outside the retry, which would run the unit again.
                _fannedOut.ForEach(deliveries.HandOver);
                if (_messagesToDeliver)
                {
                    outbox.Poke();
                }
                if (_couponsAwaited)
                {
                    couponRequests.Wake();
                }
                return result;
            }
        }
        finally
        {
            db.Database.AutoSavepointsEnabled = savepoints;
        }
    }

    /// <summary>
    /// What the unit of work lost a race to, so that it runs again from a fresh read (<see cref="Telemetry.Reruns"/>);
    /// null when the failure is not a lost race.
    /// </summary>
    internal static string? RerunReason(Exception exception) => exception switch
    {
        UnreadRepeatException => "unread_repeat",
        ConcurrentChangeException => "concurrent_change",
        DbUpdateException update => (update.InnerException is { } inner ? RerunReason(inner) : null) ?? "update_conflict",
        SqliteException { SqliteErrorCode: 5 or 6 } => "busy", // busy, locked
        // A lost race on PostgreSQL: serialization, deadlock, a key another transaction wrote first, or a row this
        // batch refers to (an advocate) deleted since it was read. A rerun reads afresh.
        DbException { SqlState: PostgresErrorCodes.SerializationFailure } => "serialization",
        DbException { SqlState: PostgresErrorCodes.DeadlockDetected } => "deadlock",
        DbException { SqlState: PostgresErrorCodes.UniqueViolation } => "unique_violation",
        DbException { SqlState: PostgresErrorCodes.ForeignKeyViolation } => "foreign_key_violation",
        _ => exception.InnerException is { } inner ? RerunReason(inner) : null,
    };
}

/// <summary>What an event repeats: one recorded before it, or one accepted before it that still waits in the inbox.</summary>
public sealed record EarlierEvent(TrackedEvent? Recorded, TrackRequest? Waiting);

/// <summary>An event as reported, with where it came from: what <see cref="ReferralEngine.TrackAsync(IReadOnlyList{TrackRequest}, CancellationToken, bool)"/> records.</summary>
/// <param name="Source">An <see cref="EventSource"/>: what a browser reports earns what the campaign's policy allows.</param>
/// <param name="EventId">The id given to an event accepted before it was processed (<see cref="EventInbox"/>); else a new one.</param>
public sealed record TrackRequest(Campaign Campaign, TrackEvent Input, string? IdempotencyKey, string? Ip, string? UserAgent, string Source,
    string? EventId = null, DateTimeOffset? ReceivedAt = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// The friend's address in one text per address (an IPv4 address reported as IPv6 by a dual-stack socket is the
    /// IPv4 one), so that attribution and fraud checks compare it with clicks' as strings.
    /// </summary>
    public string? Ip { get; init; } = BlockLists.CanonicalIp(Ip) ?? Ip;

    public string? OrderId => string.IsNullOrWhiteSpace(Input.OrderId) ? null : Input.OrderId.Trim();

    /// <summary>A <c>refund</c> or <c>chargeback</c>: it takes back the purchase with its order id.</summary>
    public bool IsRefund => EventKinds.IsRefund(Input.Type);

    /// <summary>
    /// The refund's row: its order id goes to <see cref="TrackedEvent.RefundOf"/> (the purchase keeps its own), and
    /// without an e-mail it is about the purchase's friend.
    /// </summary>
    public TrackedEvent ToRefund(DateTimeOffset now, TrackedEvent? purchase) => new()
    {
        Id = Ids.New("evt"),
        CampaignId = Campaign.Id,
        Type = EventKinds.IsRefund(Input.Type) && Input.Type!.Equals(EventKinds.Chargeback, StringComparison.OrdinalIgnoreCase)
            ? EventKinds.Chargeback
            : EventKinds.Refund,
        Email = string.IsNullOrWhiteSpace(Input.Email) ? purchase?.Email ?? "" : Participant.NormaliseEmail(Input.Email),
        Name = string.IsNullOrWhiteSpace(Input.Name) ? null : Input.Name.Trim(),
        RefundOf = OrderId,
        PurchaseValue = Input.PurchaseValue,
        Currency = Input.Currency?.ToUpperInvariant(),
        Ip = Ip,
        UserAgent = UserAgent,
        IdempotencyKey = IdempotencyKey,
        Source = Source,
        Properties = Input.Properties is null ? null : JsonSerializer.Serialize(Input.Properties, Json),
        OccurredAt = (Input.OccurredAt ?? now).ToUniversalTime(),
        ReceivedAt = now,
    };

    public TrackedEvent ToEvent(DateTimeOffset now) => new()
    {
        Id = EventId ?? Ids.New("evt"),
        CampaignId = Campaign.Id,
        Type = KnownType(Input.Type!),
        Email = Participant.NormaliseEmail(Input.Email!),
        Name = string.IsNullOrWhiteSpace(Input.Name) ? null : Input.Name.Trim(),
        OrderId = OrderId,
        PurchaseValue = Input.PurchaseValue,
        Currency = Input.Currency?.ToUpperInvariant(),
        Ip = Ip,
        UserAgent = UserAgent,
        ReferralCode = string.IsNullOrWhiteSpace(Input.ReferralCode) ? null : Input.ReferralCode.Trim(),
        ClickId = string.IsNullOrWhiteSpace(Input.ClickId) ? null : Input.ClickId.Trim(),
        IdempotencyKey = IdempotencyKey,
        Source = Source,
        Properties = Input.Properties is null ? null : JsonSerializer.Serialize(Input.Properties, Json),
        // An event accepted before it was processed happened, at the latest, when it was accepted.
        OccurredAt = (Input.OccurredAt ?? ReceivedAt ?? now).ToUniversalTime(),
        ReceivedAt = ReceivedAt ?? now,
    };

    private static string KnownType(string type) =>
        type.Equals(EventKinds.Signup, StringComparison.OrdinalIgnoreCase) ? EventKinds.Signup
        : type.Equals(EventKinds.Purchase, StringComparison.OrdinalIgnoreCase) ? EventKinds.Purchase
        : type;
}
