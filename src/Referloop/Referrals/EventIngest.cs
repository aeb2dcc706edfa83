using System.Threading.Channels;
using Referloop.Participants;
using Referloop.Tracking;

namespace Referloop.Referrals;

/// <summary>
/// The event write path of one instance: requests queue their events and wait; one loop takes everything that has
/// arrived (at most <see cref="MaxBatch"/>) and has the engine record, decide and write it in one transaction, then
/// answers each request once that transaction has committed. Events that share a friend, an order id or an
/// idempotency key with an earlier one still waiting go in a later batch, in arrival order, so each sees the first
/// one's outcome. When a batch fails, its events are run again one by one: one bad event fails alone.
/// </summary>
public sealed class EventIngest : IAsyncDisposable
{
    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IServiceScopeFactory _scopes;
    private readonly ILogger<EventIngest> _log;
    private readonly Lazy<Task> _loop;

    public EventIngest(IServiceScopeFactory scopes, IConfiguration configuration, ILogger<EventIngest> log)
    {
        _scopes = scopes;
        _log = log;
        MaxBatch = configuration.GetValue<int?>("Tracking:MaxBatch") is int most and > 0 ? most : 64;
        // Started by the first event, outside that request's execution context.
        _loop = new Lazy<Task>(() =>
        {
            using (ExecutionContext.SuppressFlow())
            {
                return Task.Run(LoopAsync);
            }
        });
    }

    /// <summary>The most events one transaction holds (<c>Tracking:MaxBatch</c>, 64).</summary>
    public int MaxBatch { get; }

    private sealed class Job(TrackRequest request)
    {
        public TrackRequest Request { get; } = request;
        public TaskCompletionSource<EventOutcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
                if (Request.OrderId is { } orderId)
                {
                    yield return $"order:{campaign}:{orderId}";
                }
                if (Request.IdempotencyKey is { } key)
                {
                    yield return $"key:{campaign}:{key}";
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
            // Events held back before go first; an event whose key is taken waits, and so do those after it with that key.
            foreach (var job in held)
            {
                Place(job);
            }
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var job))
            {
                Place(job);
            }
            held = later;
            await RunAsync(batch);

            void Place(Job job)
            {
                var keys = job.Keys.ToList();
                var free = batch.Count < MaxBatch && !keys.Any(taken.Contains);
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
        try
        {
            await using var scope = _scopes.CreateAsyncScope();
            var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
            var outcomes = await engine.TrackAsync(batch.Select(j => j.Request).ToList(), CancellationToken.None);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(outcomes[i]);
            }
        }
        catch (Exception e) when (batch.Count > 1)
        {
            _log.LogWarning(e, "A batch of {Count} events failed; running them one by one", batch.Count);
            foreach (var job in batch)
            {
                await RunAsync([job]);
            }
        }
        catch (Exception e)
        {
            batch[0].Done.TrySetException(e);
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
