using System.Diagnostics;
using System.Threading.Channels;
using Referloop.Hosting;
using Referloop.Participants;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.Referrals;

/// <summary>
/// The event write path of one instance: requests queue their events and wait; one loop takes everything that has
/// arrived (at most <see cref="MaxBatch"/>) and has the engine record, decide and write it in one transaction, then
/// answers each request once that transaction has committed. Events that share a friend, an order id or an
/// idempotency key with an earlier one still waiting go in a later batch, in arrival order, so each sees the first
/// one's outcome. A refund goes in a batch of its own (the engine decides it in a unit of work of its own). When a
/// batch fails, its events are run again one by one: one bad event fails alone; unless the database failed
/// (<see cref="DatabaseOutage"/>), which fails them all at once.
/// <para>
/// Under load a batch waits a moment for as many requests as were waiting during the one before (see
/// <see cref="Gather"/>): clients answered together send their next events together, a little later. Taken at once,
/// whatever arrived first would go alone and the rest in the batch after it, and every batch pays its reads,
/// statements and commit.
/// </para>
/// <para>
/// Repeats (an order id or idempotency key sent again) are rare: a batch reads what its events repeat only after one
/// that met a repeat (<see cref="OrderKeyed.RepeatWatch"/>); otherwise the insert of an event that repeats one makes
/// the batch run again, reading first.
/// </para>
/// </summary>
public sealed class EventIngest : IAsyncDisposable
{
    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IServiceScopeFactory _scopes;
    private readonly ILogger<EventIngest> _log;
    private readonly Lazy<Task> _loop;

    // Requests taken and not yet answered, and the most of them at once since the current batch was put together.
    private int _pending;
    private int _pendingPeak;

    // How long the last batch took to write.
    private TimeSpan _lastBatch;

    private readonly OrderKeyed.RepeatWatch _repeats = new();

    public EventIngest(IServiceScopeFactory scopes, IConfiguration configuration, ILogger<EventIngest> log)
    {
        _scopes = scopes;
        _log = log;
        MaxBatch = configuration.GetValue<int?>("Tracking:MaxBatch") is int most and > 0 ? most : 64;
        Gather = TimeSpan.FromMilliseconds(configuration.GetValue<int?>("Tracking:GatherMilliseconds") is int wait and >= 0 ? wait : 1);
        _loop = Loops.StartedOnFirstUse(LoopAsync);
    }

    /// <summary>The most events one transaction holds (<c>Tracking:MaxBatch</c>, 64).</summary>
    public int MaxBatch { get; }

    /// <summary>
    /// How long a batch waits at most for the requests expected under load (<c>Tracking:GatherMilliseconds</c>, 1;
    /// 0 never waits), and never more than a fifth of what the batch before it took to write.
    /// </summary>
    public TimeSpan Gather { get; }

    private sealed class Job(TrackRequest request)
    {
        public TrackRequest Request { get; } = request;

        /// <summary>The span of the request that queued the event, if one is recorded: the batch's span links to it.</summary>
        public ActivityContext Caller { get; } = Activity.Current?.Context ?? default;

        public TaskCompletionSource<EventOutcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>What the event shares with another that must go in a later batch: its friend, its order, its key.</summary>
        public IEnumerable<string> Keys
        {
            get
            {
                var campaign = Request.Campaign.Id;
                if (Request.Input.Email is { } email)
                {
                    // A refund may name only its order.
                    yield return $"friend:{campaign}:{Participant.NormaliseEmail(email)}";
                }
                foreach (var key in OrderKeyed.Keys(campaign, Request.OrderId, Request.IdempotencyKey))
                {
                    yield return key;
                }
            }
        }
    }

    /// <summary>Records and decides the event; completes once it is durable. Not cancellable once queued.</summary>
    public Task<EventOutcome> TrackAsync(TrackRequest request)
    {
        var job = new Job(request);
        if (!_queue.Writer.TryWrite(job))
        {
            throw new ObjectDisposedException(nameof(EventIngest));
        }
        var pending = Interlocked.Increment(ref _pending);
        if (pending > Volatile.Read(ref _pendingPeak))
        {
            Volatile.Write(ref _pendingPeak, pending);
        }
        _ = _loop.Value;
        return job.Done.Task;
    }

    private async Task LoopAsync()
    {
        var held = new List<Job>();
        while (held.Count > 0 || await _queue.Reader.WaitToReadAsync())
        {
            var batch = new List<Job>();
            var later = new List<Job>();
            var taken = new HashSet<string>();
            // Set once the batch holds a refund, or a refund waits for the next one: what arrives after it waits too.
            var closed = false;
            // Events held back before go first; an event whose key is taken waits, and so do those after it with that key.
            foreach (var job in held)
            {
                Place(job);
            }
            TakeArrived();
            // As many as were waiting during the batch before: the clients it answered send their next events now.
            var expected = Math.Min(MaxBatch, Interlocked.Exchange(ref _pendingPeak, Volatile.Read(ref _pending)));
            if (!closed && batch.Count + later.Count < expected && Gather > TimeSpan.Zero)
            {
                var wait = _lastBatch / 5 < Gather ? _lastBatch / 5 : Gather;
                var waiting = Stopwatch.GetTimestamp();
                // The timer only ends a wait in which nothing arrives; it is late by a millisecond or two.
                using var window = new CancellationTokenSource(wait);
                try
                {
                    while (!closed && batch.Count + later.Count < expected && Stopwatch.GetElapsedTime(waiting) < wait
                        && await _queue.Reader.WaitToReadAsync(window.Token))
                    {
                        TakeArrived();
                    }
                }
                catch (OperationCanceledException) when (window.IsCancellationRequested)
                {
                }
            }
            held = later;
            var started = Stopwatch.GetTimestamp();
            await RunAsync(batch);
            _lastBatch = Stopwatch.GetElapsedTime(started);
            Interlocked.Add(ref _pending, -batch.Count);

            void TakeArrived()
            {
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var job))
                {
                    Place(job);
                }
            }

            void Place(Job job)
            {
                var keys = job.Keys.ToList();
                var free = !closed && batch.Count < MaxBatch && !keys.Any(taken.Contains);
                if (job.Request.IsRefund)
                {
                    free &= batch.Count == 0;
                    closed = true;
                }
                taken.UnionWith(keys);
                (free ? batch : later).Add(job);
            }
        }
    }

    private async Task RunAsync(List<Job> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        using var span = Telemetry.Activities.HasListeners()
            ? Telemetry.Activities.StartActivity(Telemetry.EventBatch, ActivityKind.Internal, parentContext: default,
                tags: [new("referloop.batch.events", batch.Count)],
                links: batch.Where(j => j.Caller != default).Select(j => new ActivityLink(j.Caller)))
            : null;
        try
        {
            await using var scope = _scopes.CreateAsyncScope();
            var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
            var outcomes = await engine.TrackAsync(batch.Select(j => j.Request).ToList(), CancellationToken.None,
                lookForRepeats: _repeats.ReadFirst);
            _repeats.Ran(engine.MetEarlierEvent);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(outcomes[i]);
            }
        }
        catch (Exception e) when (batch.Count > 1 && !DatabaseOutage.Is(e))
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            _log.LogWarning(e, "A batch of {Count} events failed; running them one by one", batch.Count);
            foreach (var job in batch)
            {
                await RunAsync([job]);
            }
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            _log.LogError(e, "A batch of {Count} events failed", batch.Count);
            foreach (var job in batch)
            {
                job.Done.TrySetException(e);
            }
        }
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
