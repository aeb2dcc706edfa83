using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Hosting;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// The one way an attempt's result is written. Finished attempts queue here; one loop takes everything queued (at
/// most <see cref="MaxBatch"/>) and writes it in one transaction: it reads the batch's deliveries and endpoints once,
/// lets <see cref="DeliverySchedule.Record"/> decide each attempt's consequences in order, then writes them with one
/// statement per table (the deliveries' next states, the attempt log), the endpoints' health, the outbox messages the
/// results raise (<c>message.attempt.exhausted</c>, <c>endpoint.disabled</c>) and the acknowledgement hooks, and
/// commits. A commit waits for the disk, so one per batch rather than one per attempt is what lets delivery keep pace
/// with fast receivers. Each caller resumes once its record is durable.
/// <para>
/// A batch that fails is written again record by record, so one attempt's failure (an acknowledgement hook, say) does
/// not cost the others their record; an acknowledged attempt whose hook fails is recorded as a failure to retry, so
/// the acknowledgement is asked for again rather than lost.
/// </para>
/// </summary>
public sealed class DeliveryRecorder : IAsyncDisposable
{
    /// <summary>Attempts recorded in one transaction at most.</summary>
    public const int MaxBatch = 200;

    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _clock;
    private readonly OutboxSignal _signal;
    private readonly OutboxWriter _outbox;
    private readonly WebhookOptions _options;
    private readonly ILogger<DeliveryRecorder> _log;
    private readonly Lazy<Task> _loop;

    public DeliveryRecorder(IServiceScopeFactory scopes, TimeProvider clock, OutboxSignal signal, OutboxWriter outbox,
        IOptions<WebhookOptions> options, ILogger<DeliveryRecorder> log)
    {
        _scopes = scopes;
        _clock = clock;
        _signal = signal;
        _outbox = outbox;
        _options = options.Value;
        _log = log;
        _loop = Loops.StartedOnFirstUse(LoopAsync);
    }

    /// <param name="Holder">Who made the attempt under its lease (an instance, or the API for a test message): only
    /// that holder's claim is let go of when it is recorded.</param>
    private sealed record Pending(string DeliveryId, string Holder, OutboxMessage Message, AttemptOutcome Outcome)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Records one attempt with the others that finished meanwhile; completes once it is committed. The record is
    /// written whatever becomes of the caller: <paramref name="ct"/> only stops the wait. <paramref name="holder"/>
    /// made the attempt: its claim on the delivery is let go of, and anyone else's (taken after its lease ran out) kept.
    /// </summary>
    public async Task RecordAsync(string holder, ClaimedDelivery delivery, AttemptOutcome outcome, CancellationToken ct)
    {
        var pending = new Pending(delivery.Id, holder, delivery.Message, outcome);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(DeliveryRecorder));
        }
        _ = _loop.Value;
        await pending.Done.Task.WaitAsync(ct);
    }

    private async Task LoopAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            await RecordBatchAsync(batch);
            batch.Clear();
        }
    }

    private async Task RecordBatchAsync(List<Pending> batch)
    {
        if (batch.Count > 1)
        {
            try
            {
                await WriteAsync(batch, forceRetry: false);
                batch.ForEach(record => record.Done.TrySetResult());
                return;
            }
            catch (Exception e)
            {
                _log.LogDebug(e, "Recording {Count} webhook attempts together failed; recording them one by one", batch.Count);
            }
        }
        foreach (var record in batch)
        {
            try
            {
                await RecordOneAsync(record);
                record.Done.TrySetResult();
            }
            catch (Exception e)
            {
                record.Done.TrySetException(e);
            }
        }
    }

    private async Task RecordOneAsync(Pending record)
    {
        try
        {
            await WriteAsync([record], forceRetry: false);
        }
        catch (Exception e) when (record.Outcome.Succeeded)
        {
            // The receiver acknowledged but releasing what waited for it failed: keep the delivery going, so the
            // acknowledgement is asked for (and the hook run) again rather than lost.
            _log.LogError(e, "Recording the acknowledged delivery {DeliveryId} failed; it will be retried", record.DeliveryId);
            await WriteAsync([record with
            {
                Outcome = record.Outcome with
                {
                    Error = Clip("The receiver answered 2xx, but recording the acknowledgement failed: " + e.Message, 1000),
                },
            }], forceRetry: true);
        }
    }

    /// <summary>Writes a batch of attempts and everything they lead to in one transaction.</summary>
    private async Task WriteAsync(IReadOnlyList<Pending> records, bool forceRetry)
    {
        var ct = CancellationToken.None;
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // A failed batch is written again record by record in new transactions, so a savepoint per statement buys nothing.
        db.Database.AutoSavepointsEnabled = false;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var now = _clock.GetUtcNow();

        var ids = records.Select(r => r.DeliveryId).Distinct().ToList();
        // Locked on PostgreSQL, so that a cancel or a replay cannot slip in between this read and the write below; on
        // SQLite the transaction already holds the one writer (SqliteWriteQueue).
        var deliveryRows = db.OnSqlite
            ? await db.WebhookDeliveries.AsNoTracking().Where(d => ids.Contains(d.Id)).ToListAsync(ct)
            : await db.WebhookDeliveries.FromSql($"""
                SELECT * FROM webhook_deliveries WHERE "Id" = ANY({ids.ToArray()}) ORDER BY "Id" FOR UPDATE
                """).AsNoTracking().ToListAsync(ct);
        var deliveries = deliveryRows.ToDictionary(d => d.Id, d => new DeliveryState(d.Id, d.EndpointId, d.Status, d.Attempts,
            d.Round, d.IsTest, d.NextAttemptAt, d.LastStatusCode, d.LastError, d.CompletedAt));
        var endpointIds = deliveries.Values.Select(d => d.EndpointId).Distinct().ToList();
        var endpointRows = await db.WebhookEndpoints.AsNoTracking().Where(e => endpointIds.Contains(e.Id)).ToDictionaryAsync(e => e.Id, ct);
        var health = endpointRows.Values.ToDictionary(e => e.Id,
            e => new EndpointHealth(e.Id, e.Enabled, e.RetryUntilAcknowledged, e.FailingSince));

        var changed = new Dictionary<string, DeliveryState>();
        var holders = new Dictionary<string, string>();
        var unrecorded = new List<Pending>();
        var attempts = new List<WebhookAttempt>();
        var raised = new List<OutboxMessage>();
        var disabled = new List<(WebhookEndpoint Endpoint, Disabling Disabling)>();
        var acknowledged = new List<OutboxMessage>();
        foreach (var record in records)
        {
            // Missing when the endpoint was deleted (with its log) while this attempt was on the wire.
            if (!deliveries.TryGetValue(record.DeliveryId, out var delivery) || !health.TryGetValue(delivery.EndpointId, out var endpoint))
            {
                continue;
            }
            var result = DeliverySchedule.Record(delivery, endpoint, record.Message.Type, record.Outcome, now,
                _options.DisableAfterFailingFor, (Random.Shared.NextDouble() * 2) - 1, forceRetry);
            if (result is null)
            {
                // Cancelled by a person or by an erasure meanwhile, and then not logged either (after an erasure its
                // URL may name them); its holder still lets go of it.
                unrecorded.Add(record);
                continue;
            }
            deliveries[delivery.Id] = changed[delivery.Id] = result.Delivery;
            holders[delivery.Id] = record.Holder;
            health[endpoint.Id] = result.Endpoint;
            attempts.Add(AttemptRow(result.Delivery, record.Outcome, now));
            var row = endpointRows[endpoint.Id];
            if (result.Exhausted)
            {
                raised.Add(Outbox.CreateAbout(EventTypes.MessageAttemptExhausted, row, record.Message.CampaignId,
                    new MessageAttemptExhaustedData(EndpointRef.From(row),
                        new MessageRef(record.Message.Id, record.Message.Type, record.Message.CreatedAt), delivery.Id,
                        result.Delivery.Attempts, record.Outcome.StatusCode, record.Outcome.Error, now), now));
            }
            if (result.Disabled is { } disabling)
            {
                disabled.Add((row, disabling));
                raised.Add(EndpointState.DisabledEvent(row, disabling.Reason, disabling.Detail, now));
                _log.LogWarning("Webhook endpoint {EndpointId} disabled: {Reason}", row.Id, disabling.Detail);
            }
            if (result.Acknowledged)
            {
                acknowledged.Add(record.Message);
            }
        }

        await UpdateDeliveriesAsync(db, [.. changed.Values], holders, now, ct);
        foreach (var released in unrecorded.GroupBy(r => r.Holder, r => r.DeliveryId))
        {
            await DeliveryEngine.ReleaseClaimsAsync(db, released.Key, released, until: null, ct);
        }
        await InsertAttemptsAsync(db, attempts, ct);
        var disabledIds = disabled.Select(d => d.Endpoint.Id).ToHashSet();
        foreach (var (id, after) in health)
        {
            if (after.FailingSince != endpointRows[id].FailingSince && !disabledIds.Contains(id))
            {
                await db.WebhookEndpoints.Where(e => e.Id == id)
                    .ExecuteUpdateAsync(s => s.SetProperty(e => e.FailingSince, after.FailingSince), ct);
            }
        }
        foreach (var (endpoint, disabling) in disabled)
        {
            var failingSince = health[endpoint.Id].FailingSince;
            await db.WebhookEndpoints.Where(e => e.Id == endpoint.Id).ExecuteUpdateAsync(s => s
                .SetProperty(e => e.Enabled, false)
                .SetProperty(e => e.DisabledAt, now)
                .SetProperty(e => e.DisabledReason, disabling.Detail)
                .SetProperty(e => e.FailingSince, failingSince)
                .SetProperty(e => e.UpdatedAt, now), ct);
            await EndpointState.FailPendingAsync(db, endpoint.Id, "The endpoint was disabled: " + disabling.Detail, now, ct);
        }
        await _outbox.InsertAsync(db, raised, now, ct);
        var releasing = acknowledged.Count > 0 && await DeliveryAcknowledgements.OnAcknowledgedAsync(
            scope.ServiceProvider.GetServices<IAcknowledgementHandler>(), db, acknowledged, ct);
        await transaction.CommitAsync(ct);
        // Raised events, and the reward.issued messages an acknowledgement hook wrote, are fanned out at once.
        if (raised.Count > 0 || releasing)
        {
            _signal.Poke();
        }
    }

    private static WebhookAttempt AttemptRow(DeliveryState delivery, AttemptOutcome outcome, DateTimeOffset now) => new()
    {
        Id = Ids.New("att"),
        DeliveryId = delivery.Id,
        EndpointId = delivery.EndpointId,
        Number = delivery.Attempts,
        RequestId = outcome.RequestId,
        Method = outcome.Method,
        Url = Clip(outcome.Url, 4096),
        StatusCode = outcome.StatusCode,
        LatencyMs = outcome.LatencyMs,
        ResponseExcerpt = outcome.ResponseExcerpt,
        Error = outcome.Error is { } error ? Clip(error, 1000) : null,
        AttemptedAt = now,
        RequestHeaders = outcome.RequestHeaders,
    };

    /// <summary>
    /// Each delivery's next state, with one statement. Its lease is cleared only if it is still the one the attempt
    /// was made under: a lease that ran out meanwhile (a failed renewal, a long wait for the record) may have been
    /// taken by another instance, which then holds the delivery and must keep it, or a third one would send it too.
    /// The state is written either way: the attempt happened, and a 2xx counts.
    /// </summary>
    private static Task UpdateDeliveriesAsync(ReferloopDb db, IReadOnlyList<DeliveryState> rows, IReadOnlyDictionary<string, string> holders,
        DateTimeOffset now, CancellationToken ct)
    {
        var bulk = new BulkRows(db, rows.Count)
            .Text("Id", i => rows[i].Id)
            .Text("Holder", i => holders[rows[i].Id])
            .Text("Status", i => rows[i].Status)
            .Int("Attempts", i => rows[i].Attempts)
            .Int("Round", i => rows[i].Round)
            .Instant("NextAttemptAt", i => rows[i].NextAttemptAt)
            .Int("LastStatusCode", i => rows[i].LastStatusCode)
            .Text("LastError", i => rows[i].LastError is { } error ? Clip(error, 1000) : null)
            .Instant("CompletedAt", i => rows[i].CompletedAt)
            .Instant("UpdatedAt", _ => now);
        return bulk.ExecuteAsync(
            sqlite: """
                UPDATE webhook_deliveries SET "Status" = $Status, "Attempts" = $Attempts, "Round" = $Round,
                    "NextAttemptAt" = $NextAttemptAt, "LastStatusCode" = $LastStatusCode, "LastError" = $LastError,
                    "CompletedAt" = $CompletedAt, "UpdatedAt" = $UpdatedAt,
                    "ClaimedBy" = CASE WHEN "ClaimedBy" = $Holder THEN NULL ELSE "ClaimedBy" END,
                    "ClaimedUntil" = CASE WHEN "ClaimedBy" = $Holder THEN NULL ELSE "ClaimedUntil" END
                WHERE "Id" = $Id
                """,
            postgres: $"""
                UPDATE webhook_deliveries AS d SET "Status" = u."Status", "Attempts" = u."Attempts", "Round" = u."Round",
                    "NextAttemptAt" = u."NextAttemptAt", "LastStatusCode" = u."LastStatusCode", "LastError" = u."LastError",
                    "CompletedAt" = u."CompletedAt", "UpdatedAt" = u."UpdatedAt",
                    "ClaimedBy" = CASE WHEN d."ClaimedBy" = u."Holder" THEN NULL ELSE d."ClaimedBy" END,
                    "ClaimedUntil" = CASE WHEN d."ClaimedBy" = u."Holder" THEN NULL ELSE d."ClaimedUntil" END
                FROM {bulk.Unnest("u")}
                WHERE d."Id" = u."Id"
                """,
            ct);
    }

    private static Task InsertAttemptsAsync(ReferloopDb db, IReadOnlyList<WebhookAttempt> rows, CancellationToken ct) =>
        new BulkRows(db, rows.Count)
            .Text("Id", i => rows[i].Id)
            .Text("DeliveryId", i => rows[i].DeliveryId)
            .Text("EndpointId", i => rows[i].EndpointId)
            .Int("Number", i => rows[i].Number)
            .Text("RequestId", i => rows[i].RequestId)
            .Text("Method", i => rows[i].Method)
            .Text("Url", i => rows[i].Url)
            .Int("StatusCode", i => rows[i].StatusCode)
            .Long("LatencyMs", i => rows[i].LatencyMs)
            .Text("ResponseExcerpt", i => rows[i].ResponseExcerpt)
            .Text("Error", i => rows[i].Error)
            .Text("RequestHeaders", i => rows[i].RequestHeaders)
            .Instant("AttemptedAt", i => rows[i].AttemptedAt)
            .InsertAsync("webhook_attempts", ct);

    private static string Clip(string text, int length) => text.Length > length ? text[..length] : text;

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop.IsValueCreated)
        {
            await _loop.Value;
        }
    }
}
