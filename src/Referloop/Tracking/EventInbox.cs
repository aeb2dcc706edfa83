using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;
using Referloop.Hosting;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>
/// An event accepted with <c>Prefer: respond-async</c> and not yet processed: the request as it arrived, durable before
/// the 202. Processing writes the event's row with the same id and deletes this one in the same transaction; unless
/// processing answered it with another event recorded meanwhile (two instances may record the same order at once), as
/// a repeat or as the confirmation of a browser's report: then this row stays, holding that <see cref="Answer"/>
/// instead of an order, so that the accepted id still reads as processed.
/// </summary>
public sealed class InboxEvent : IOrderKeyed
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public string? OrderId { get; init; }
    public string? IdempotencyKey { get; init; }
    public required string Source { get; init; }
    public string? Ip { get; init; }
    public string? UserAgent { get; init; }

    /// <summary>The <see cref="TrackEvent"/> body, as JSON.</summary>
    public required string Request { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>
    /// Set once processing answered the event with another one (<see cref="InboxAnswer"/>, as JSON); its order id and
    /// key are then cleared, as the other event holds them. Null while the event waits.
    /// </summary>
    public string? Answer { get; init; }

    /// <summary>A waiting event as accepted: the request in hand, under <paramref name="id"/>.</summary>
    public static InboxEvent Waiting(TrackRequest request, string id, DateTimeOffset receivedAt) =>
        Of(request, id, receivedAt, answer: null);

    /// <summary>An accepted event that processing answered, at <paramref name="now"/>, with another event's <paramref name="outcome"/>.</summary>
    public static InboxEvent Answered(TrackRequest request, EventOutcome outcome, DateTimeOffset now) =>
        Of(request, request.EventId!, request.ReceivedAt ?? now,
            JsonSerializer.Serialize(new InboxAnswer(request.IdempotencyKey, outcome), EventInbox.Json));

    // An answered row holds no order id or key: the event that answered it holds them.
    private static InboxEvent Of(TrackRequest request, string id, DateTimeOffset receivedAt, string? answer) => new()
    {
        Id = id,
        CampaignId = request.Campaign.Id,
        OrderId = answer is null ? request.OrderId : null,
        IdempotencyKey = answer is null ? request.IdempotencyKey : null,
        Source = request.Source,
        Ip = request.Ip,
        UserAgent = request.UserAgent,
        Request = JsonSerializer.Serialize(request.Input, EventInbox.Json),
        ReceivedAt = receivedAt,
        Answer = answer,
    };

    /// <summary>The request as it was accepted, for its <paramref name="campaign"/>; null when its body no longer reads as one.</summary>
    public TrackRequest? ToRequest(Campaign campaign)
    {
        try
        {
            return JsonSerializer.Deserialize<TrackEvent>(Request, EventInbox.Json) is { } input
                ? new TrackRequest(campaign, input, IdempotencyKey, Ip, UserAgent, Source, Id, ReceivedAt)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>What an accepted event was answered with when processing found another event holding its order or key.</summary>
public sealed record InboxAnswer(string? IdempotencyKey, EventOutcome Outcome);

internal sealed class InboxEventConfiguration : IEntityTypeConfiguration<InboxEvent>
{
    public void Configure(EntityTypeBuilder<InboxEvent> e)
    {
        e.ToTable("event_inbox");
        e.HasKey(x => x.Id);
        e.Property(x => x.Id).HasMaxLength(40);
        e.Property(x => x.CampaignId).HasMaxLength(40);
        e.Property(x => x.OrderId).HasMaxLength(200);
        e.Property(x => x.IdempotencyKey).HasMaxLength(200);
        e.Property(x => x.Source).HasMaxLength(16);
        e.Property(x => x.Ip).HasMaxLength(45);
        e.Property(x => x.UserAgent).HasMaxLength(512);
        // A retry of a waiting event finds it, and two instances cannot both accept the same order.
        e.HasIndex(x => new { x.CampaignId, x.OrderId }).IsUnique().HasFilter("\"OrderId\" IS NOT NULL");
        e.HasIndex(x => new { x.CampaignId, x.IdempotencyKey }).IsUnique().HasFilter("\"IdempotencyKey\" IS NOT NULL");
        // Recovery's oldest-first read of what waits: an answered row never waits again.
        e.HasIndex(x => x.ReceivedAt).HasFilter("\"Answer\" IS NULL");
    }
}

/// <summary>What <c>Prefer: respond-async</c> answers: the event's id, and whether it repeats one accepted before.</summary>
public sealed record EventAccepted(string EventId, bool Duplicate, [property: Values(typeof(EventStatus))] string Status);

/// <summary>
/// The fast acknowledgement of <c>POST /api/v1/events</c> with <c>Prefer: respond-async</c>. Requests queue here; one
/// loop writes everything that has arrived (at most <see cref="MaxBatch"/>) to <c>event_inbox</c> in one transaction and
/// answers each request once it has committed. An order id or idempotency key seen before (processed or still
/// waiting) answers the earlier event's id with <c>duplicate: true</c>, unless a browser reported it and the server now
/// does: that report may confirm the browser's or take the order from it, which only processing can tell, so it is not
/// accepted here but processed at once (<see cref="AcceptAsync"/> answers null). Accepted events then wait in memory (at most
/// <c>Tracking:MaxQueued</c>) for a second loop that hands them to <see cref="EventIngest"/> a batch at a time, which
/// processes them as it processes synchronous events. Acceptance goes first: while it is under load (see
/// <see cref="AcceptanceLoad"/>) the waiting events wait, for at most <c>Tracking:InboxYieldSeconds</c>, so a burst
/// is answered at the rate the event alone can be made durable and processed once it has passed. Events left in the
/// table (a restart, more than <c>Tracking:MaxQueued</c> waiting) are picked up by <see cref="RecoverAsync"/>: once
/// the waiting ones are done, and every <c>Tracking:InboxRecoverySeconds</c>.
/// </summary>
public sealed class EventInbox : IAsyncDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<Waiting> _waiting = Channel.CreateUnbounded<Waiting>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, bool> _processing = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly AcceptanceLoad _load = new();
    private readonly OrderKeyed.RepeatWatch _repeats = new();

    // On PostgreSQL a batch always reads first. Another instance may process an order this batch accepts while the
    // insert runs: its commit moves the order from the inbox to the events, the insert's look into the events sees them
    // as they were when it began, and its unique index no longer finds the inbox row, so the order would be accepted
    // twice. One read sees it in one table or the other. SQLite writes one transaction at a time.
    private readonly bool _alwaysReadFirst;
    private readonly IServiceScopeFactory _scopes;
    private readonly EventIngest _ingest;
    private readonly TimeProvider _clock;
    private readonly ILogger<EventInbox> _log;
    private readonly int _maxQueued;
    private readonly TimeSpan _yield;
    private readonly Lazy<Task> _loop;
    private readonly Lazy<Task> _pump;
    private volatile bool _overflowed;

    public EventInbox(IServiceScopeFactory scopes, EventIngest ingest, TimeProvider clock, IConfiguration configuration,
        ILogger<EventInbox> log)
    {
        _scopes = scopes;
        _ingest = ingest;
        _clock = clock;
        _log = log;
        MaxBatch = configuration.GetValue<int?>("Tracking:InboxMaxBatch") is int most and > 0 ? most : 256;
        _maxQueued = configuration.GetValue<int?>("Tracking:MaxQueued") is int queued and > 0 ? queued : 1_000;
        _yield = TimeSpan.FromSeconds(configuration.GetValue<int?>("Tracking:InboxYieldSeconds") is int y and >= 0 ? y : 30);
        _alwaysReadFirst = StorageSetup.ProviderName(configuration) != "sqlite";
        _loop = Loops.StartedOnFirstUse(LoopAsync);
        _pump = Loops.StartedOnFirstUse(PumpAsync);
    }

    /// <summary>The most events one acceptance transaction holds (<c>Tracking:InboxMaxBatch</c>, 256).</summary>
    public int MaxBatch { get; }

    private sealed record Job(TrackRequest Request, TaskCompletionSource<EventAccepted?> Done);

    /// <summary>An accepted event on its way to processing, and when (<see cref="Stopwatch"/>) it began to wait.</summary>
    private readonly record struct Waiting(TrackRequest Request, long Since);

    /// <summary>
    /// Makes the request durable and answers its event id; processing follows in the background. Null when the request
    /// is the server's report of an order a browser reported first: it is not accepted, and the caller has it processed.
    /// </summary>
    public Task<EventAccepted?> AcceptAsync(TrackRequest request)
    {
        var job = new Job(request, new TaskCompletionSource<EventAccepted?>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(job))
        {
            throw new ObjectDisposedException(nameof(EventInbox));
        }
        _ = _loop.Value;
        return job.Done.Task;
    }

    private async Task LoopAsync()
    {
        while (await _queue.Reader.WaitToReadAsync())
        {
            var batch = new List<Job>();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var job))
            {
                batch.Add(job);
            }
            _load.Began(batch.Count);
            try
            {
                var accepted = await WriteWithRetriesAsync(batch);
                _repeats.Ran(accepted.Any(a => a.Answer is not { Duplicate: false }));
                foreach (var (job, answer, row) in accepted)
                {
                    job.Done.TrySetResult(answer);
                    if (row is not null)
                    {
                        // The request in hand is what the row holds: it goes on as it came, with the row's id.
                        Process(job.Request with { EventId = row.Id, ReceivedAt = row.ReceivedAt }, justAccepted: true);
                    }
                }
            }
            catch (Exception e)
            {
                _log.LogError(e, "{Count} events could not be accepted", batch.Count);
                foreach (var job in batch)
                {
                    job.Done.TrySetException(e);
                }
            }
            _load.Ended(Stopwatch.GetTimestamp());
        }
    }

    /// <summary>
    /// Writes the batch, reading first what its requests repeat only after a batch that met a repeat (see
    /// <see cref="OrderKeyed.RepeatWatch"/>; on SQLite): unread, a repeat is found by the insert, and the batch runs
    /// again, reading.
    /// A batch that lost a race with another instance runs again too: its next read finds what the other accepted. Two
    /// instances taking the same orders at once may each time have accepted another of the batch's: each run finds at
    /// least one more of them, so a batch runs at most once per request in it, and one more.
    /// </summary>
    private async Task<List<(Job Job, EventAccepted? Answer, InboxEvent? Row)>> WriteWithRetriesAsync(List<Job> batch)
    {
        var readFirst = _alwaysReadFirst || _repeats.ReadFirst;
        var races = 0;
        while (true)
        {
            try
            {
                return await WriteAsync(batch, readFirst);
            }
            catch (AcceptedMeanwhileException) when (!readFirst)
            {
                readFirst = true;
            }
            catch (AcceptedMeanwhileException) when (races < batch.Count)
            {
                races++;
            }
        }
    }

    private sealed class AcceptedMeanwhileException(string message) : Exception(message);

    private async Task<List<(Job Job, EventAccepted? Answer, InboxEvent? Row)>> WriteAsync(List<Job> batch, bool readFirst)
    {
        var now = _clock.GetUtcNow();
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await using var transaction = await db.Database.BeginTransactionAsync();
        var earlier = readFirst ? await EarlierAsync(db, batch.Select(j => j.Request).ToList()) : [];
        var answers = new List<(Job, EventAccepted?, InboxEvent?)>();
        var rows = new List<InboxEvent>();
        foreach (var job in batch)
        {
            var request = job.Request;
            var keys = OrderKeyed.Keys(request.Campaign.Id, request.OrderId, request.IdempotencyKey).ToList();
            if (keys.Select(earlier.GetValueOrDefault).FirstOrDefault(e => e is not null) is { } first)
            {
                // The server's report of an order a browser reported: processed at once, where it may confirm it or take it.
                answers.Add((job, first.Source == EventSource.Browser && request.Source == EventSource.Server
                    ? null
                    : new EventAccepted(first.Id, true, first.Status), null));
                continue;
            }
            var row = InboxEvent.Waiting(request, Ids.New("evt"), now);
            // A later request of the same batch with the same order id or key repeats this one.
            foreach (var key in keys)
            {
                earlier[key] = (row.Id, EventStatus.Pending, row.Source);
            }
            rows.Add(row);
            answers.Add((job, new EventAccepted(row.Id, false, EventStatus.Pending), row));
        }
        var inserted = 0;
        if (rows.Count > 0)
        {
            // Unread, a row is not inserted either where a recorded event holds its order id or key.
            inserted = await BulkRows.For(db, rows).InsertAsync("event_inbox", CancellationToken.None, "ON CONFLICT DO NOTHING",
                readFirst ? null : OrderKeyed.NoneIn("events"));
        }
        if (inserted != rows.Count)
        {
            // Unread, a repeat; read, another instance accepted the same order id or key meanwhile: the requests run
            // again, and find it.
            throw new AcceptedMeanwhileException($"{rows.Count - inserted} of {rows.Count} events were accepted meanwhile by another instance");
        }
        await transaction.CommitAsync();
        return answers;
    }

    /// <summary>The events, processed or waiting, that already hold an order id or key of the requests, by key.</summary>
    private static async Task<Dictionary<string, (string Id, string Status, string Source)?>> EarlierAsync(ReferloopDb db, List<TrackRequest> requests)
    {
        var campaignIds = requests.Select(r => r.Campaign.Id).Distinct().ToList();
        var orderIds = requests.Select(r => r.OrderId).OfType<string>().Distinct().ToList();
        var keys = requests.Select(r => r.IdempotencyKey).OfType<string>().Distinct().ToList();
        var found = new Dictionary<string, (string, string, string)?>();
        if (orderIds.Count == 0 && keys.Count == 0)
        {
            return found;
        }
        // One query: a round trip and a query pipeline less per batch than asking each table alone.
        var earlier = await db.Events.AsNoTracking().HoldingAny(campaignIds, orderIds, keys)
            .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, e.Source, Waiting = false })
            .Concat(db.Inbox.AsNoTracking().HoldingAny(campaignIds, orderIds, keys)
                .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, e.Source, Waiting = true }))
            .ToListAsync();
        foreach (var e in earlier.OrderBy(e => e.Waiting))
        {
            foreach (var key in OrderKeyed.Keys(e.CampaignId, e.OrderId, e.IdempotencyKey))
            {
                found.TryAdd(key, (e.Id, e.Waiting ? EventStatus.Pending : EventStatus.Processed, e.Source));
            }
        }
        return found;
    }

    /// <summary>
    /// Queues an accepted event for processing, unless this instance already has it in hand or too many wait. One just
    /// accepted stays in the table while events accepted before it wait there: it is read after them, in order.
    /// </summary>
    private void Process(TrackRequest request, bool justAccepted)
    {
        if (justAccepted && _overflowed)
        {
            return;
        }
        if (_processing.Count >= _maxQueued)
        {
            // It stays in the table; the pump reads it from there once the waiting ones are done.
            _overflowed = true;
            return;
        }
        if (_processing.TryAdd(request.EventId!, true))
        {
            _waiting.Writer.TryWrite(new Waiting(request, Stopwatch.GetTimestamp()));
            _ = _pump.Value;
        }
    }

    /// <summary>
    /// Hands the waiting events to <see cref="EventIngest"/> at most one of its batches at a time, oldest first, each
    /// once the one before is done; while acceptance is under load it waits, up to <c>Tracking:InboxYieldSeconds</c>
    /// for the oldest. Once none wait and some were left in the table, it recovers them.
    /// </summary>
    private async Task PumpAsync()
    {
        var ct = _stopping.Token;
        var chunk = new List<Task>();
        try
        {
            while (await _waiting.Reader.WaitToReadAsync(ct))
            {
                while (_waiting.Reader.TryPeek(out var oldest)
                    && _load.Yields(Stopwatch.GetTimestamp(), Stopwatch.GetElapsedTime(oldest.Since), _yield))
                {
                    await Task.Delay(AcceptanceLoad.Recent / 2, ct);
                }
                chunk.Clear();
                while (chunk.Count < _ingest.MaxBatch && _waiting.Reader.TryRead(out var next))
                {
                    chunk.Add(RunAsync(next.Request));
                }
                await Task.WhenAll(chunk);
                if (_overflowed && !_waiting.Reader.TryPeek(out _))
                {
                    _overflowed = false;
                    await RecoverLeftAsync(ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: what waits stays in the table for the next start.
        }
    }

    private async Task RunAsync(TrackRequest request)
    {
        var id = request.EventId!;
        try
        {
            await _ingest.TrackAsync(request);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down: the row stays in the inbox for the next start.
        }
        catch (Exception e)
        {
            // The row stays in the inbox; the next recovery runs it again.
            _log.LogWarning(e, "Accepted event {EventId} could not be processed yet", id);
        }
        finally
        {
            _processing.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Reads what was left in the table. Until that read succeeds, newly accepted events stay in the table behind the
    /// ones left before them, so a failed read is tried again here, soon, rather than by the periodic recovery.
    /// </summary>
    private async Task RecoverLeftAsync(CancellationToken ct)
    {
        for (var pause = TimeSpan.FromMilliseconds(250); ; pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.TicksPerSecond * 30)))
        {
            try
            {
                if (await RecoverAsync(TimeSpan.Zero, ct) > 0)
                {
                    // What it handed over may not be all that is left: once that is done, it looks again.
                    _overflowed = true;
                }
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _overflowed = true;
                _log.LogWarning(e, "Accepted events left in the inbox could not be read; trying again in {Pause}", pause);
            }
            await Task.Delay(pause, ct);
        }
    }

    /// <summary>
    /// Hands every event waiting longer than <paramref name="olderThan"/> that this instance does not have in hand to the
    /// write path, oldest first; returns how many. Another instance may run the same event at the same time: the
    /// second to write it finds it processed and leaves it.
    /// </summary>
    public async Task<int> RecoverAsync(TimeSpan olderThan, CancellationToken ct)
    {
        var room = _maxQueued - _processing.Count;
        if (room <= 0)
        {
            return 0;
        }
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var before = _clock.GetUtcNow() - olderThan;
        var rows = await db.Inbox.AsNoTracking()
            .Where(e => e.ReceivedAt <= before && e.Answer == null)
            .OrderBy(e => e.ReceivedAt)
            .Take(room)
            .ToListAsync(ct);
        var campaignIds = rows.Select(r => r.CampaignId).Distinct().ToList();
        var campaigns = await db.Campaigns.AsNoTracking().Where(c => campaignIds.Contains(c.Id)).ToDictionaryAsync(c => c.Id, ct);
        var handed = 0;
        foreach (var row in rows.Where(r => !_processing.ContainsKey(r.Id)))
        {
            if (!campaigns.TryGetValue(row.CampaignId, out var campaign))
            {
                // Its campaign was deleted while it waited: nothing can process it.
                await db.Inbox.Where(e => e.Id == row.Id).ExecuteDeleteAsync(ct);
            }
            else if (row.ToRequest(campaign) is { } request)
            {
                Process(request, justAccepted: false);
                handed++;
            }
            else
            {
                // Kept for whoever can read it; the rows behind it go on.
                _log.LogError("Accepted event {EventId} waits in the inbox with a body that no longer reads as an event", row.Id);
            }
        }
        return handed;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop.IsValueCreated)
        {
            await _loop.Value;
        }
        _waiting.Writer.TryComplete();
        await _stopping.CancelAsync();
        if (_pump.IsValueCreated)
        {
            await _pump.Value;
        }
        _stopping.Dispose();
    }
}

/// <summary>
/// Whether acceptance is under load, so that processing accepted events waits: acceptance is writing, or wrote less
/// than <see cref="Recent"/> ago, a batch of at least <see cref="Busy"/> requests (that many queued while the one before
/// was written). A few clients, or a steady load the machine keeps up with, are written a request or two at a time
/// and never make processing wait. However busy acceptance is, an event that has waited <c>Tracking:InboxYieldSeconds</c>
/// goes.
/// </summary>
internal sealed class AcceptanceLoad
{
    public const int Busy = 8;
    public static readonly TimeSpan Recent = TimeSpan.FromMilliseconds(50);

    private volatile bool _writing;
    private int _count;
    private long _endedAt;

    /// <summary>Acceptance took <paramref name="count"/> requests to write together.</summary>
    public void Began(int count)
    {
        Volatile.Write(ref _count, count);
        _writing = true;
    }

    /// <summary>Acceptance has written them, at <paramref name="at"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public void Ended(long at)
    {
        Volatile.Write(ref _endedAt, at);
        _writing = false;
    }

    /// <summary>Whether processing waits at <paramref name="now"/>, the oldest accepted event having waited <paramref name="waited"/>.</summary>
    public bool Yields(long now, TimeSpan waited, TimeSpan limit) =>
        waited < limit
        && Volatile.Read(ref _count) >= Busy
        && (_writing || Stopwatch.GetElapsedTime(Volatile.Read(ref _endedAt), now) < Recent);
}

/// <summary>
/// Runs <see cref="EventInbox.RecoverAsync"/> at start and <c>Tracking:InboxRecoverySeconds</c> (30) after each run.
/// A delay after each run, not a periodic timer: when the clock jumps (a test's clock moved by a month), a periodic
/// timer owes every period it skipped, and a recovery runs for each.
/// </summary>
internal sealed class EventInboxRecovery(EventInbox inbox, TimeProvider clock, IConfiguration configuration, ILogger<EventInboxRecovery> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var every = TimeSpan.FromSeconds(configuration.GetValue<int?>("Tracking:InboxRecoverySeconds") is int s and > 0 ? s : 30);
        var olderThan = TimeSpan.Zero;
        try
        {
            while (true)
            {
                try
                {
                    // At start everything waiting is left over; later, only what outlived a normal hand-over.
                    var handed = await inbox.RecoverAsync(olderThan, stoppingToken);
                    olderThan = every;
                    if (handed > 0)
                    {
                        log.LogInformation("{Count} accepted events handed to processing again", handed);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning(e, "Accepted events could not be recovered; trying again in {Interval}", every);
                }
                await Task.Delay(every, clock, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
