using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>
/// An event accepted with <c>Prefer: respond-async</c> and not yet processed: the request as it arrived, durable before
/// the 202. Processing writes the event's row with the same id and deletes this one in the same transaction.
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
}

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
        e.HasIndex(x => x.ReceivedAt);
    }
}

/// <summary>What <c>Prefer: respond-async</c> answers: the event's id, and whether it repeats one accepted before.</summary>
public sealed record EventAccepted(string EventId, bool Duplicate, [property: Values(typeof(EventStatus))] string Status);

/// <summary>
/// The fast acknowledgement of <c>POST /api/v1/events</c> with <c>Prefer: respond-async</c>. Requests queue here; one
/// loop writes everything that has arrived (at most <see cref="MaxBatch"/>) to <c>event_inbox</c> in one transaction,
/// answers each request once it has committed, and hands the events to <see cref="EventIngest"/>, which processes them
/// as it processes synchronous events. An order id or idempotency key seen before (processed or still waiting)
/// answers the earlier event's id with <c>duplicate: true</c>. Events left waiting (a restart, or more queued than
/// <c>Tracking:MaxQueued</c>) are picked up by <see cref="RecoverAsync"/>, which runs every
/// <c>Tracking:InboxRecoverySeconds</c>.
/// </summary>
public sealed class EventInbox : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, bool> _processing = new();
    private readonly IServiceScopeFactory _scopes;
    private readonly EventIngest _ingest;
    private readonly TimeProvider _clock;
    private readonly ILogger<EventInbox> _log;
    private readonly int _maxQueued;
    private readonly Lazy<Task> _loop;

    public EventInbox(IServiceScopeFactory scopes, EventIngest ingest, TimeProvider clock, IConfiguration configuration,
        ILogger<EventInbox> log)
    {
        _scopes = scopes;
        _ingest = ingest;
        _clock = clock;
        _log = log;
        MaxBatch = configuration.GetValue<int?>("Tracking:InboxMaxBatch") is int most and > 0 ? most : 256;
        _maxQueued = configuration.GetValue<int?>("Tracking:MaxQueued") is int queued and > 0 ? queued : 10_000;
        _loop = new Lazy<Task>(() =>
        {
            using (ExecutionContext.SuppressFlow())
            {
                return Task.Run(LoopAsync);
            }
        });
    }

    /// <summary>The most events one acceptance transaction holds (<c>Tracking:InboxMaxBatch</c>, 256).</summary>
    public int MaxBatch { get; }

    private sealed record Job(TrackRequest Request, TaskCompletionSource<EventAccepted> Done);

    /// <summary>Makes the request durable and answers its event id; processing follows in the background.</summary>
    public Task<EventAccepted> AcceptAsync(TrackRequest request)
    {
        var job = new Job(request, new TaskCompletionSource<EventAccepted>(TaskCreationOptions.RunContinuationsAsynchronously));
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
            try
            {
                var accepted = await WriteWithRetriesAsync(batch);
                foreach (var (job, answer, row) in accepted)
                {
                    job.Done.TrySetResult(answer);
                    if (row is not null)
                    {
                        // The request in hand is what the row holds: it goes on as it came, with the row's id.
                        Process(job.Request with { EventId = row.Id, ReceivedAt = row.ReceivedAt });
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
        }
    }

    /// <summary>A batch that lost a race with another instance runs again: its second read finds what the other accepted.</summary>
    private async Task<List<(Job Job, EventAccepted Answer, InboxEvent? Row)>> WriteWithRetriesAsync(List<Job> batch)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await WriteAsync(batch);
            }
            catch (AcceptedMeanwhileException) when (attempt < 3)
            {
            }
        }
    }

    private sealed class AcceptedMeanwhileException(string message) : Exception(message);

    private async Task<List<(Job Job, EventAccepted Answer, InboxEvent? Row)>> WriteAsync(List<Job> batch)
    {
        var now = _clock.GetUtcNow();
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        await using var transaction = await db.Database.BeginTransactionAsync();
        var earlier = await EarlierAsync(db, batch.Select(j => j.Request).ToList());
        var answers = new List<(Job, EventAccepted, InboxEvent?)>();
        var rows = new List<InboxEvent>();
        foreach (var job in batch)
        {
            var request = job.Request;
            var keys = Keys(request.Campaign.Id, request.OrderId, request.IdempotencyKey).ToList();
            if (keys.Select(earlier.GetValueOrDefault).FirstOrDefault(e => e is not null) is { } first)
            {
                answers.Add((job, new EventAccepted(first.Id, true, first.Status), null));
                continue;
            }
            var row = new InboxEvent
            {
                Id = Ids.New("evt"),
                CampaignId = request.Campaign.Id,
                OrderId = request.OrderId,
                IdempotencyKey = request.IdempotencyKey,
                Source = request.Source,
                Ip = request.Ip,
                UserAgent = request.UserAgent,
                Request = JsonSerializer.Serialize(request.Input, Json),
                ReceivedAt = now,
            };
            // A later request of the same batch with the same order id or key repeats this one.
            foreach (var key in keys)
            {
                earlier[key] = (row.Id, EventStatus.Pending);
            }
            rows.Add(row);
            answers.Add((job, new EventAccepted(row.Id, false, EventStatus.Pending), row));
        }
        var inserted = 0;
        if (rows.Count > 0)
        {
            inserted = await BulkRows.For(db, rows).InsertAsync("event_inbox", CancellationToken.None,
                """ON CONFLICT DO NOTHING RETURNING "Id" """);
        }
        if (inserted != rows.Count)
        {
            // Another instance accepted the same order id or key meanwhile: the requests run again, and find it.
            throw new AcceptedMeanwhileException($"{rows.Count - inserted} of {rows.Count} events were accepted meanwhile by another instance");
        }
        await transaction.CommitAsync();
        return answers;
    }

    private static IEnumerable<string> Keys(string campaignId, string? orderId, string? idempotencyKey)
    {
        if (orderId is not null)
        {
            yield return $"order:{campaignId}:{orderId}";
        }
        if (idempotencyKey is not null)
        {
            yield return $"key:{campaignId}:{idempotencyKey}";
        }
    }

    /// <summary>The events, processed or waiting, that already hold an order id or key of the requests, by key.</summary>
    private static async Task<Dictionary<string, (string Id, string Status)?>> EarlierAsync(ReferloopDb db, List<TrackRequest> requests)
    {
        var campaignIds = requests.Select(r => r.Campaign.Id).Distinct().ToList();
        var orderIds = requests.Select(r => r.OrderId).OfType<string>().Distinct().ToList();
        var keys = requests.Select(r => r.IdempotencyKey).OfType<string>().Distinct().ToList();
        var found = new Dictionary<string, (string, string)?>();
        if (orderIds.Count == 0 && keys.Count == 0)
        {
            return found;
        }
        var processed = await db.Events.AsNoTracking().HoldingAny(campaignIds, orderIds, keys)
            .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, Status = EventStatus.Processed })
            .ToListAsync();
        var waiting = await db.Inbox.AsNoTracking().HoldingAny(campaignIds, orderIds, keys)
            .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, Status = EventStatus.Pending })
            .ToListAsync();
        foreach (var e in processed.Concat(waiting))
        {
            foreach (var key in Keys(e.CampaignId, e.OrderId, e.IdempotencyKey))
            {
                found.TryAdd(key, (e.Id, e.Status));
            }
        }
        return found;
    }

    /// <summary>Hands an accepted event to the write path, unless this instance already has it in hand or too many wait.</summary>
    private void Process(TrackRequest request)
    {
        var id = request.EventId!;
        if (_processing.Count >= _maxQueued || !_processing.TryAdd(id, true))
        {
            return;
        }
        Task<EventOutcome> processed;
        try
        {
            processed = _ingest.TrackAsync(request);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down: the row stays in the inbox for the next start.
            _processing.TryRemove(id, out _);
            return;
        }
        processed.ContinueWith(done =>
        {
            _processing.TryRemove(id, out _);
            if (done.Exception is { } error)
            {
                // The row stays in the inbox; the next recovery runs it again.
                _log.LogWarning(error.InnerException, "Accepted event {EventId} could not be processed yet", id);
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
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
            .Where(e => e.ReceivedAt <= before)
            .OrderBy(e => e.ReceivedAt)
            .Take(room)
            .ToListAsync(ct);
        var campaignIds = rows.Select(r => r.CampaignId).Distinct().ToList();
        var campaigns = await db.Campaigns.AsNoTracking().Where(c => campaignIds.Contains(c.Id)).ToDictionaryAsync(c => c.Id, ct);
        var handed = 0;
        foreach (var row in rows.Where(r => !_processing.ContainsKey(r.Id)))
        {
            if (campaigns.TryGetValue(row.CampaignId, out var campaign))
            {
                var input = JsonSerializer.Deserialize<TrackEvent>(row.Request, Json)!;
                Process(new TrackRequest(campaign, input, row.IdempotencyKey, row.Ip, row.UserAgent, row.Source, row.Id, row.ReceivedAt));
                handed++;
            }
            else
            {
                // Its campaign was deleted while it waited: nothing can process it.
                await db.Inbox.Where(e => e.Id == row.Id).ExecuteDeleteAsync(ct);
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
    }
}

/// <summary>Runs <see cref="EventInbox.RecoverAsync"/> at start and every <c>Tracking:InboxRecoverySeconds</c> (30).</summary>
internal sealed class EventInboxRecovery(EventInbox inbox, TimeProvider clock, IConfiguration configuration, ILogger<EventInboxRecovery> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var every = TimeSpan.FromSeconds(configuration.GetValue<int?>("Tracking:InboxRecoverySeconds") is int s and > 0 ? s : 30);
        using var timer = new PeriodicTimer(every, clock);
        var olderThan = TimeSpan.Zero;
        do
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
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
