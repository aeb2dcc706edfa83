using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Outbound;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>What one HTTP try came to.</summary>
public sealed record AttemptOutcome(string RequestId, string Method, string Url, int? StatusCode, long LatencyMs,
    string? ResponseExcerpt, string? Error, TimeSpan? RetryAfter)
{
    /// <summary>The request headers as sent, secrets redacted: <see cref="SentHeaders"/>.</summary>
    public string? RequestHeaders { get; init; }

    public bool Succeeded => StatusCode is >= 200 and < 300;
    public bool Gone => StatusCode == (int)HttpStatusCode.Gone;
}

/// <summary>
/// Makes one attempt of one claimed delivery and records it: the attempt log row, the delivery's next state
/// (done, failed, or when to try again) and the endpoint's health, in one transaction (shared with the other
/// attempts that finished meanwhile).
/// </summary>
public sealed class DeliverySender(IServiceScopeFactory scopes, IHttpClientFactory httpClients,
    TimeProvider clock, WebhookKeys keys, UnitOfWork unitOfWork, IOptions<WebhookOptions> options, ILogger<DeliverySender> log)
{
    public const string ClientName = "webhooks";
    public const int ExcerptBytes = 4096;

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _endpointGates = new();
    private readonly ConcurrentDictionary<string, (int Rate, RateLimiter Limiter)> _rateLimiters = new();
    private readonly ConcurrentQueue<PendingRecord> _toRecord = new();

    // One writer of attempt records at a time, on every database: while it writes, the attempts that finish queue up
    // and go into its next transaction together.
    private readonly SemaphoreSlim _recordTurn = new(1, 1);

    /// <summary>Attempts recorded in one transaction at most.</summary>
    private const int MaxRecordBatch = 200;

    /// <summary>Sends a delivery by id (a test message); returns false when it was no longer pending.</summary>
    public async Task<bool> DeliverAsync(string deliveryId, CancellationToken ct)
    {
        WebhookDelivery? delivery;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
            delivery = await db.WebhookDeliveries.AsNoTracking()
                .Include(d => d.Message).Include(d => d.Endpoint)
                .FirstOrDefaultAsync(d => d.Id == deliveryId, ct);
            if (delivery is null || delivery.Status != DeliveryStatus.Pending)
            {
                return false;
            }
            if (!delivery.Endpoint!.Enabled)
            {
                await EndpointState.FailDisabledAsync(db, delivery.Id, delivery.Endpoint, clock.GetUtcNow(), ct);
                return false;
            }
        }
        var claimed = new ClaimedDelivery(delivery.Id, delivery.Message!, delivery.Endpoint!, delivery.ClaimedUntil ?? clock.GetUtcNow());
        await RecordAsync(claimed, await AttemptAsync(claimed, ct), ct);
        return true;
    }

    /// <summary>Makes one attempt of a delivery this instance holds, within its endpoint's bounds; records nothing.</summary>
    public async Task<AttemptOutcome> AttemptAsync(ClaimedDelivery delivery, CancellationToken ct)
    {
        var endpoint = delivery.Endpoint;
        var gate = _endpointGates.GetOrAdd(endpoint.Id, _ => new SemaphoreSlim(Math.Max(1, options.Value.MaxConcurrencyPerEndpoint)));
        await gate.WaitAsync(ct);
        try
        {
            if (endpoint.RateLimitPerSecond is { } rate)
            {
                // Real time on purpose: a rate limit protects the receiver, who lives in real time.
                using var lease = await RateLimiter(endpoint.Id, rate).AcquireAsync(1, ct);
            }
            return await SendAsync(endpoint, delivery.Message, ct);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Records an attempt together with the others that finished meanwhile, in one transaction (group commit):
    /// a commit waits for the disk (SQLite's fsync, PostgreSQL's WAL flush), and at one commit per attempt that
    /// wait, not the receivers, bounded how many deliveries an instance made per second. Whoever gets the next
    /// turn to write takes everything queued so far; returns once this attempt is recorded. The records are written
    /// whatever becomes of the caller that happens to write them: they are other attempts' too, and were made.
    /// </summary>
    public async Task RecordAsync(ClaimedDelivery delivery, AttemptOutcome outcome, CancellationToken ct)
    {
        var mine = new PendingRecord(delivery.Id, delivery.Message, outcome);
        _toRecord.Enqueue(mine);
        while (!mine.Done.Task.IsCompleted)
        {
            await _recordTurn.WaitAsync(ct);
            try
            {
                if (!mine.Done.Task.IsCompleted)
                {
                    var batch = new List<PendingRecord>();
                    while (batch.Count < MaxRecordBatch && _toRecord.TryDequeue(out var next))
                    {
                        batch.Add(next);
                    }
                    await RecordBatchAsync(batch);
                }
            }
            finally
            {
                _recordTurn.Release();
            }
        }
        await mine.Done.Task.WaitAsync(ct);
    }

    private async Task RecordBatchAsync(List<PendingRecord> batch)
    {
        if (batch.Count > 1)
        {
            try
            {
                await WriteAsync(batch, forceRetry: false, CancellationToken.None);
                batch.ForEach(record => record.Done.TrySetResult());
                return;
            }
            catch (Exception e)
            {
                // One attempt's failure (an acknowledgement hook, say) must not cost the others their record.
                log.LogDebug(e, "Recording {Count} webhook attempts together failed; recording them one by one", batch.Count);
            }
        }
        foreach (var record in batch)
        {
            try
            {
                await RecordOneAsync(record, CancellationToken.None);
                record.Done.TrySetResult();
            }
            catch (Exception e)
            {
                record.Done.TrySetException(e);
            }
        }
    }

    private async Task RecordOneAsync(PendingRecord record, CancellationToken ct)
    {
        try
        {
            await WriteAsync([record], forceRetry: false, ct);
        }
        catch (Exception e) when (record.Outcome.Succeeded && !ct.IsCancellationRequested)
        {
            // The receiver acknowledged but releasing what waited for it failed: keep the delivery going, so the
            // acknowledgement is asked for (and the hook run) again rather than lost.
            log.LogError(e, "Recording the acknowledged delivery {DeliveryId} failed; it will be retried", record.DeliveryId);
            await WriteAsync([record with
            {
                Outcome = record.Outcome with
                {
                    Error = "The receiver answered 2xx, but recording the acknowledgement failed: " + e.Message,
                },
            }], forceRetry: true, ct);
        }
    }

    private sealed record PendingRecord(string DeliveryId, OutboxMessage Message, AttemptOutcome Outcome)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private RateLimiter RateLimiter(string endpointId, int rate)
    {
        var entry = _rateLimiters.AddOrUpdate(endpointId,
            _ => (rate, NewLimiter(rate)),
            (_, existing) => existing.Rate == rate ? existing : (rate, NewLimiter(rate)));
        return entry.Limiter;

        static RateLimiter NewLimiter(int rate) => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = rate,
            TokensPerPeriod = rate,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    private async Task<AttemptOutcome> SendAsync(WebhookEndpoint endpoint, OutboxMessage message, CancellationToken ct)
    {
        var requestId = Ids.New("req");
        var payload = WebhookPayload.Build(endpoint.Format, endpoint.Url, message);
        var now = clock.GetUtcNow();
        using var request = new HttpRequestMessage(payload.Method, payload.Url);
        if (payload.ContentType is not null)
        {
            request.Content = new StringContent(payload.Body, Encoding.UTF8, payload.ContentType);
        }
        foreach (var (name, value) in endpoint.Headers)
        {
            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, value);
            }
        }
        var timestamp = now.ToUnixTimeSeconds();
        WebhookSignature.Apply(request, message.Id, timestamp, endpoint.Signing == WebhookSigning.Ed25519
            ? keys.Header(endpoint.SigningKeys(now), message.Id, timestamp, payload.SignedContent)
            : WebhookSignature.Header(endpoint.SigningSecrets(now), message.Id, timestamp, payload.SignedContent));
        request.Headers.TryAddWithoutValidation("X-Request-Id", requestId);
        request.Headers.UserAgent.ParseAdd("Referloop-Webhooks/1.0");

        var sent = SentHeaders.Record(request, endpoint.Headers);
        return await SendAsync(request, payload, requestId, now, ct) with { RequestHeaders = sent };
    }

    private async Task<AttemptOutcome> SendAsync(HttpRequestMessage request, WebhookPayload payload, string requestId,
        DateTimeOffset now, CancellationToken ct)
    {
        var timeout = options.Value.Timeout;
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(timeout);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var response = await httpClients.CreateClient(ClientName)
                .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, bounded.Token);
            var excerpt = await ReadExcerptAsync(response, bounded.Token);
            var status = (int)response.StatusCode;
            var retryAfter = status is 429 or 503 ? RetrySchedule.RetryAfter(response, now) : null;
            return new(requestId, payload.Method.Method, payload.Url, status, Elapsed(started), excerpt,
                status is >= 200 and < 300 ? null : $"The receiver answered {status} {response.ReasonPhrase}.", retryAfter);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new(requestId, payload.Method.Method, payload.Url, null, Elapsed(started), null,
                $"Timed out after {timeout.TotalSeconds:0.###} s.", null);
        }
        catch (HttpRequestException e)
        {
            return new(requestId, payload.Method.Method, payload.Url, null, Elapsed(started), null, Describe(e), null);
        }
    }

    private static long Elapsed(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;

    private static string Describe(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is ForbiddenAddressException forbidden)
            {
                return forbidden.Message;
            }
        }
        var text = new StringBuilder(e.Message);
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            text.Append(" (").Append(inner.Message).Append(')');
        }
        return text.Length > 1000 ? text.ToString(0, 1000) : text.ToString();
    }

    private static async Task<string?> ReadExcerptAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[ExcerptBytes];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        return read == 0 ? null : Encoding.UTF8.GetString(buffer, 0, read);
    }

    /// <summary>Writes attempts and their consequences in one transaction: one read of their rows, one save.</summary>
    private async Task WriteAsync(IReadOnlyList<PendingRecord> records, bool forceRetry, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        // A failed batch is written again record by record in new transactions, so a savepoint per save buys nothing.
        db.Database.AutoSavepointsEnabled = false;
        // On SQLite the records share a commit with the events ingested meanwhile: a commit of their own would hold
        // the one writer through its fsync while the events wait.
        await unitOfWork.RunAsync(db, async () =>
        {
            if (!forceRetry && records.All(r => r.Outcome.Succeeded))
            {
                await WriteSucceededAsync(db, scope.ServiceProvider, records, ct);
            }
            else
            {
                await WriteTrackedAsync(db, scope.ServiceProvider, records, forceRetry, ct);
            }
            return true;
        }, ct);
    }

    /// <summary>
    /// Records attempts through their tracked deliveries: when some failed, or when an acknowledged attempt must be
    /// tried again; each delivery's next try or its end, and its endpoint's health.
    /// </summary>
    private async Task WriteTrackedAsync(ReferloopDb db, IServiceProvider scoped, IReadOnlyList<PendingRecord> records,
        bool forceRetry, CancellationToken ct)
    {
        var ids = records.Select(r => r.DeliveryId).ToList();
        var deliveries = await db.WebhookDeliveries.Include(d => d.Endpoint)
            .Where(d => ids.Contains(d.Id))
            .ToDictionaryAsync(d => d.Id, ct);
        var now = clock.GetUtcNow();
        var disabled = new List<(string EndpointId, string Reason)>();
        var acknowledged = new List<OutboxMessage>();
        foreach (var record in records)
        {
            // Missing when the endpoint was deleted (with its log) while this attempt was on the wire; cancelled by a
            // person or by an erasure meanwhile, and then not logged either (after an erasure its URL may name them).
            if (deliveries.TryGetValue(record.DeliveryId, out var delivery) && delivery.Status != DeliveryStatus.Cancelled)
            {
                var disableReason = Apply(db, delivery, record.Message, record.Outcome, now, forceRetry);
                if (disableReason is not null)
                {
                    disabled.Add((delivery.EndpointId, disableReason));
                }
                if (delivery.Status == DeliveryStatus.Succeeded && !delivery.IsTest)
                {
                    acknowledged.Add(record.Message);
                }
            }
        }
        await db.SaveChangesAsync(ct);
        foreach (var (endpointId, reason) in disabled)
        {
            await EndpointState.FailPendingAsync(db, endpointId, "The endpoint was disabled: " + reason, now, ct);
        }
        if (acknowledged.Count > 0)
        {
            var handlers = scoped.GetServices<IAcknowledgementHandler>().ToList();
            foreach (var message in acknowledged)
            {
                await DeliveryAcknowledgements.OnAcknowledgedAsync(handlers, db, message, ct);
            }
        }
    }

    /// <summary>
    /// Records attempts that all succeeded (the common case) with a statement per table instead of a tracked
    /// entity per row: each delivery is done, each attempt logged under the number its delivery returns, each
    /// endpoint healthy again; the same changes as <see cref="Apply"/> makes for a 2xx.
    /// </summary>
    private async Task WriteSucceededAsync(ReferloopDb db, IServiceProvider scoped, IReadOnlyList<PendingRecord> records,
        CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var done = new Dictionary<string, (int Number, bool IsTest, string EndpointId)>();
        var deliveries = new BulkRows(db, records.Count)
            .Text("Id", i => records[i].DeliveryId)
            .Int("Code", i => records[i].Outcome.StatusCode)
            .Instant("Now", _ => now);
        await deliveries.ExecuteAsync(
            sqlite: """
                UPDATE webhook_deliveries SET "Attempts" = "Attempts" + 1, "Round" = "Round" + 1, "Status" = 'succeeded',
                    "LastStatusCode" = $Code, "LastError" = NULL, "UpdatedAt" = $Now, "CompletedAt" = $Now,
                    "ClaimedBy" = NULL, "ClaimedUntil" = NULL
                WHERE "Id" = $Id AND "Status" <> 'cancelled'
                RETURNING "Id", "Attempts", "IsTest", "EndpointId"
                """,
            postgres: $"""
                UPDATE webhook_deliveries AS d SET "Attempts" = d."Attempts" + 1, "Round" = d."Round" + 1, "Status" = 'succeeded',
                    "LastStatusCode" = u."Code", "LastError" = NULL, "UpdatedAt" = u."Now", "CompletedAt" = u."Now",
                    "ClaimedBy" = NULL, "ClaimedUntil" = NULL
                FROM {deliveries.Unnest("u")}
                WHERE d."Id" = u."Id" AND d."Status" <> 'cancelled'
                RETURNING d."Id", d."Attempts", d."IsTest", d."EndpointId"
                """,
            row => done[row.GetString(0)] = (row.GetInt32(1), row.GetBoolean(2), row.GetString(3)),
            ct);

        // Missing when the endpoint was deleted (with its log) while the attempt was on the wire, or cancelled meanwhile.
        var recorded = records.Where(r => done.ContainsKey(r.DeliveryId)).ToList();
        var attemptIds = recorded.Select(_ => Ids.New("att")).ToList();
        await new BulkRows(db, recorded.Count)
            .Text("Id", i => attemptIds[i])
            .Text("DeliveryId", i => recorded[i].DeliveryId)
            .Text("EndpointId", i => done[recorded[i].DeliveryId].EndpointId)
            .Int("Number", i => done[recorded[i].DeliveryId].Number)
            .Text("RequestId", i => recorded[i].Outcome.RequestId)
            .Text("Method", i => recorded[i].Outcome.Method)
            .Text("Url", i => Clip(recorded[i].Outcome.Url))
            .Int("StatusCode", i => recorded[i].Outcome.StatusCode)
            .Long("LatencyMs", i => recorded[i].Outcome.LatencyMs)
            .Text("ResponseExcerpt", i => recorded[i].Outcome.ResponseExcerpt)
            .Text("RequestHeaders", i => recorded[i].Outcome.RequestHeaders)
            .Instant("AttemptedAt", _ => now)
            .InsertAsync("webhook_attempts", ct);

        var endpointIds = done.Values.Select(d => d.EndpointId).Distinct().ToList();
        await db.WebhookEndpoints.Where(e => endpointIds.Contains(e.Id) && e.FailingSince != null)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.FailingSince, (DateTimeOffset?)null), ct);

        var acknowledged = recorded.Where(r => !done[r.DeliveryId].IsTest).Select(r => r.Message).ToList();
        if (acknowledged.Any(m => m.Type == EventTypes.ReferralApproved))
        {
            var handlers = scoped.GetServices<IAcknowledgementHandler>().ToList();
            foreach (var message in acknowledged)
            {
                await DeliveryAcknowledgements.OnAcknowledgedAsync(handlers, db, message, ct);
            }
        }
    }

    private static string Clip(string url) => url.Length > 4096 ? url[..4096] : url;

    /// <summary>Applies one attempt to its delivery and endpoint; returns why the endpoint is now disabled, if it is.</summary>
    private string? Apply(ReferloopDb db, WebhookDelivery delivery, OutboxMessage message, AttemptOutcome outcome,
        DateTimeOffset now, bool forceRetry)
    {
        var endpoint = delivery.Endpoint!;
        delivery.Attempts++;
        delivery.Round++;
        db.WebhookAttempts.Add(new WebhookAttempt
        {
            Id = Ids.New("att"),
            DeliveryId = delivery.Id,
            EndpointId = endpoint.Id,
            Number = delivery.Attempts,
            RequestId = outcome.RequestId,
            Method = outcome.Method,
            Url = Clip(outcome.Url),
            StatusCode = outcome.StatusCode,
            LatencyMs = outcome.LatencyMs,
            ResponseExcerpt = outcome.ResponseExcerpt,
            Error = outcome.Error,
            AttemptedAt = now,
            RequestHeaders = outcome.RequestHeaders,
        });
        delivery.LastStatusCode = outcome.StatusCode;
        delivery.LastError = outcome.Error;
        delivery.UpdatedAt = now;
        delivery.ClaimedBy = null;
        delivery.ClaimedUntil = null;

        string? disableReason = null;
        var disableCode = DisabledReason.Gone;
        var exhausted = false;
        if (outcome.Succeeded && !forceRetry)
        {
            delivery.Status = DeliveryStatus.Succeeded;
            delivery.CompletedAt = now;
            endpoint.FailingSince = null;
        }
        else if (outcome.Gone)
        {
            delivery.Status = DeliveryStatus.Failed;
            delivery.CompletedAt = now;
            disableReason = "The receiver answered 410 Gone.";
        }
        else if (delivery.Status != DeliveryStatus.Pending)
        {
            // Failed with its endpoint while this attempt was on the wire: it stays so.
            endpoint.FailingSince ??= now;
        }
        else
        {
            endpoint.FailingSince ??= now;
            var untilAcknowledged = !delivery.IsTest && endpoint.RetriesUntilAcknowledged(message.Type);
            var wait = outcome.RetryAfter ?? RetrySchedule.After(delivery.Round, untilAcknowledged);
            if (!endpoint.RetryUntilAcknowledged && now - endpoint.FailingSince >= options.Value.DisableAfterFailingFor)
            {
                disableReason = $"Every attempt failed since {endpoint.FailingSince:O}.";
                disableCode = DisabledReason.Failing;
                delivery.Status = DeliveryStatus.Failed;
                delivery.CompletedAt = now;
            }
            else if (wait is { } delay)
            {
                delivery.NextAttemptAt = now + delay;
            }
            else
            {
                delivery.Status = DeliveryStatus.Failed;
                delivery.CompletedAt = now;
                exhausted = true;
            }
        }

        // Not for test messages, and never for an operational event: otherwise an endpoint that fails to take
        // message.attempt.exhausted would raise another one for every one it fails to take.
        if (exhausted && !delivery.IsTest && !EventTypes.IsOperational(message.Type))
        {
            Outbox.AddAbout(db, EventTypes.MessageAttemptExhausted, endpoint, message.CampaignId,
                new MessageAttemptExhaustedData(EndpointRef.From(endpoint),
                    new MessageRef(message.Id, message.Type, message.CreatedAt), delivery.Id, delivery.Attempts,
                    outcome.StatusCode, outcome.Error, now), now);
        }

        // Even while delivering an operational event: a disabling is a change of state that happens once per
        // endpoint until someone enables it again, so it cannot repeat by itself.
        if (disableReason is null || !endpoint.Enabled)
        {
            return null;
        }
        endpoint.Enabled = false;
        endpoint.DisabledAt = now;
        endpoint.DisabledReason = disableReason;
        endpoint.UpdatedAt = now;
        EndpointState.AddDisabledEvent(db, endpoint, disableCode, disableReason, now);
        log.LogWarning("Webhook endpoint {EndpointId} disabled: {Reason}", endpoint.Id, disableReason);
        return disableReason;
    }
}

public sealed record EndpointRef(string Id, string Url, string? Description)
{
    public static EndpointRef From(WebhookEndpoint endpoint) => new(endpoint.Id, endpoint.Url, endpoint.Description);
}

/// <summary>The <c>reason</c> of <c>endpoint.disabled</c>.</summary>
public static class DisabledReason
{
    /// <summary>The receiver answered 410 Gone.</summary>
    public const string Gone = "gone";

    /// <summary>Every attempt failed for <see cref="WebhookOptions.DisableAfterFailingFor"/> (5 days).</summary>
    public const string Failing = "failing";

    /// <summary>Disabled through the API or the dashboard.</summary>
    public const string Manual = "manual";
}

/// <summary>The <c>data</c> of <c>endpoint.disabled</c>: <c>reason</c> is a <see cref="DisabledReason"/>, <c>detail</c> says it in words.</summary>
public sealed record EndpointDisabledData(EndpointRef Endpoint, string Reason, string Detail, DateTimeOffset DisabledAt);

public sealed record MessageRef(string Id, string Type, DateTimeOffset CreatedAt);

/// <summary>The <c>data</c> of <c>message.attempt.exhausted</c>.</summary>
public sealed record MessageAttemptExhaustedData(EndpointRef Endpoint, MessageRef Message, string DeliveryId, int Attempts,
    int? LastStatusCode, string? LastError, DateTimeOffset FailedAt);

internal static class EndpointState
{
    /// <summary>Tells the other endpoints; the caller's next SaveChanges writes it with the disabling itself.</summary>
    public static void AddDisabledEvent(ReferloopDb db, WebhookEndpoint endpoint, string reason, string detail, DateTimeOffset now) =>
        Outbox.AddAbout(db, EventTypes.EndpointDisabled, endpoint, endpoint.CampaignId,
            new EndpointDisabledData(EndpointRef.From(endpoint), reason, detail, now), now);

    /// <summary>Ends one delivery claimed before its endpoint was disabled, as the endpoint's other pending ones were.</summary>
    public static Task<int> FailDisabledAsync(ReferloopDb db, string deliveryId, WebhookEndpoint endpoint, DateTimeOffset now,
        CancellationToken ct) =>
        db.WebhookDeliveries.Where(d => d.Id == deliveryId).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, DeliveryStatus.Failed)
            .SetProperty(d => d.LastError, "The endpoint is disabled: " + endpoint.DisabledReason)
            .SetProperty(d => d.ClaimedBy, (string?)null)
            .SetProperty(d => d.ClaimedUntil, (DateTimeOffset?)null)
            .SetProperty(d => d.CompletedAt, now), ct);

    /// <summary>Ends the pending deliveries of a disabled endpoint; "recover" re-queues them once it is enabled again.</summary>
    public static Task<int> FailPendingAsync(ReferloopDb db, string endpointId, string reason, DateTimeOffset now, CancellationToken ct) =>
        db.WebhookDeliveries
            .Where(d => d.EndpointId == endpointId && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Failed)
                .SetProperty(d => d.LastError, reason)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.UpdatedAt, now), ct);
}
