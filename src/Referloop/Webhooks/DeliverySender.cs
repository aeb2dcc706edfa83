using System.Diagnostics;
using System.Net;
using System.Text;
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
/// Makes one HTTP attempt of a delivery: builds the payload in the endpoint's format, signs it, sends it through the
/// guarded <c>webhooks</c> client (one pool of connections, kept alive per receiver) and reads what came back. It
/// decides and records nothing: <see cref="DeliverySchedule"/> decided it goes now, <see cref="DeliveryRecorder"/>
/// writes what it came to.
/// </summary>
public sealed class DeliverySender(IServiceScopeFactory scopes, IHttpClientFactory httpClients,
    TimeProvider clock, WebhookKeys keys, DeliveryRecorder recorder, IOptions<WebhookOptions> options)
{
    public const string ClientName = "webhooks";
    public const int ExcerptBytes = 4096;

    /// <summary>Who holds a test message's delivery while the request that sends it runs.</summary>
    public const string ApiHolder = "api";

    /// <summary>
    /// Sends a delivery by id (a test message, held by <see cref="ApiHolder"/>) and records it; returns false when it
    /// was no longer pending.
    /// </summary>
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
        await recorder.RecordAsync(ApiHolder, claimed, await AttemptAsync(claimed, ct), ct);
        return true;
    }

    /// <summary>Makes one attempt of a delivery this instance holds; records nothing.</summary>
    public Task<AttemptOutcome> AttemptAsync(ClaimedDelivery delivery, CancellationToken ct) =>
        SendAsync(delivery.Endpoint, delivery.Message, ct);

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
                status is >= 200 and < 300 ? null : $"The receiver answered {status} {Reason(response)}.", retryAfter);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new(requestId, payload.Method.Method, payload.Url, null, Elapsed(started), null,
                $"Timed out after {timeout.TotalSeconds:0.###} s.", null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Refused, reset, or an answer cut short while its body was read (HttpIOException): a failed attempt like any
            // other, recorded and retried on the schedule.
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

    /// <summary>The receiver's reason phrase, as far as a log line wants it: at most 200 characters, no NUL.</summary>
    private static string? Reason(HttpResponseMessage response) =>
        response.ReasonPhrase is { } reason ? (reason.Length <= 200 ? reason : reason[..200] + "…").Replace('\0', '\uFFFD') : null;

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
        // A binary answer may hold NUL, which a PostgreSQL text column refuses: the attempt would never be recorded.
        return read == 0 ? null : Encoding.UTF8.GetString(buffer, 0, read).Replace('\0', '\uFFFD');
    }
}

/// <summary>An endpoint as other endpoints read about it: its URL reduced to its <see cref="WebhookEndpoint.Origin"/>.</summary>
public sealed record EndpointRef(string Id, string Url, string? Description)
{
    public static EndpointRef From(WebhookEndpoint endpoint) => new(endpoint.Id, WebhookEndpoint.Origin(endpoint.Url), endpoint.Description);
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
    /// <summary>The <c>endpoint.disabled</c> event that tells the other endpoints; the caller writes it with the disabling.</summary>
    public static OutboxMessage DisabledEvent(WebhookEndpoint endpoint, string reason, string detail, DateTimeOffset now) =>
        Outbox.CreateAbout(EventTypes.EndpointDisabled, endpoint, endpoint.CampaignId,
            new EndpointDisabledData(EndpointRef.From(endpoint), reason, detail, now), now);

    /// <summary>Adds the <c>endpoint.disabled</c> event to the context, for the save that writes the disabling.</summary>
    public static void AddDisabledEvent(ReferloopDb db, WebhookEndpoint endpoint, string reason, string detail, DateTimeOffset now) =>
        Outbox.Add(db, DisabledEvent(endpoint, reason, detail, now));

    /// <summary>Ends one delivery claimed before its endpoint was disabled, as the endpoint's other pending ones were.</summary>
    public static Task<int> FailDisabledAsync(ReferloopDb db, string deliveryId, WebhookEndpoint endpoint, DateTimeOffset now,
        CancellationToken ct) =>
        db.WebhookDeliveries.Where(d => d.Id == deliveryId).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, DeliveryStatus.Failed)
            .SetProperty(d => d.LastError, "The endpoint is disabled: " + endpoint.DisabledReason)
            .SetProperty(d => d.ClaimedBy, (string?)null)
            .SetProperty(d => d.ClaimedUntil, (DateTimeOffset?)null)
            .SetProperty(d => d.CompletedAt, now), ct);

    /// <summary>
    /// Locks an endpoint's pending deliveries on PostgreSQL, in id order, before a change of the endpoint that also
    /// writes them (disabling, deleting): the recorder locks the deliveries it records (pending ones) and then writes
    /// their endpoint's health, so taking the endpoint first could deadlock with it. Its history is not locked: the
    /// recorder does not write it.
    /// </summary>
    public static async Task LockPendingAsync(ReferloopDb db, string endpointId, CancellationToken ct)
    {
        if (!db.OnSqlite)
        {
            await db.Database.ExecuteSqlAsync($"""
                SELECT 1 FROM webhook_deliveries WHERE "EndpointId" = {endpointId} AND "Status" = 'pending' ORDER BY "Id" FOR UPDATE
                """, ct);
        }
    }

    /// <summary>
    /// Ends the pending deliveries of a disabled endpoint; "recover" re-queues them once it is enabled again. Their
    /// leases stay with their holders: an instance drops the ones still waiting when told (<see cref="DeliveryStops"/>)
    /// or at its next lease renewal, and lets go of an attempt on the wire when it is recorded, so a recover meanwhile
    /// cannot have it sent twice at once.
    /// </summary>
    public static Task<int> FailPendingAsync(ReferloopDb db, string endpointId, string reason, DateTimeOffset now, CancellationToken ct) =>
        db.WebhookDeliveries
            .Where(d => d.EndpointId == endpointId && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Failed)
                .SetProperty(d => d.LastError, reason)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.UpdatedAt, now), ct);
}
