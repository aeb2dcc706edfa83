using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

/// <summary>One message to one endpoint with every attempt: the request as sent and the receiver's answer.</summary>
public sealed class MessageModel(ReferloopDb db, TimeProvider clock, OutboxSignal signal, DeliveryEngine engine) : PageModel
{
    // Shown inside HTML-encoded markup, so there is no need to escape "+" and friends, which would only hinder reading.
    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string DeliveryId { get; set; } = "";

    public WebhookDelivery Delivery { get; private set; } = null!;
    public WebhookEndpoint Endpoint => Delivery.Endpoint!;
    public OutboxMessage Message => Delivery.Message!;
    public IReadOnlyList<WebhookAttempt> Attempts { get; private set; } = [];

    /// <summary>Pending and retried until a 2xx: the referral's rewards wait for it.</summary>
    public bool Waiting => Delivery.Status == DeliveryStatus.Pending && DeliveryResponse.RetriesUntilAcknowledged(Delivery, Endpoint);

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    /// <summary>The delivery as the API shows it; the page polls it to show new attempts as they happen.</summary>
    public async Task<IActionResult> OnGetStatusAsync(CancellationToken ct) =>
        await LoadAsync(ct) ? new JsonResult(DeliveryResponse.From(Delivery)) : NotFound();

    public async Task<IActionResult> OnPostReplayAsync(CancellationToken ct)
    {
        if (!await db.WebhookDeliveries.AnyAsync(d => d.Id == DeliveryId && d.EndpointId == Id, ct))
        {
            return NotFound();
        }
        var result = (await WebhooksApi.Replay(DeliveryId, db, signal, clock, ct)).Result;
        if (result is Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult problem)
        {
            TempData["Problem"] = problem.ProblemDetails.Detail;
        }
        else
        {
            TempData["Notice"] = "Replay queued: the message is sent again with the same webhook-id. The new attempt appears below.";
        }
        return Redirect($"/admin/webhooks/{Id}/messages/{DeliveryId}");
    }

    public async Task<IActionResult> OnPostCancelAsync(CancellationToken ct)
    {
        if (!await db.WebhookDeliveries.AnyAsync(d => d.Id == DeliveryId && d.EndpointId == Id, ct))
        {
            return NotFound();
        }
        var result = (await WebhooksApi.Cancel(DeliveryId, db, engine, clock, ct)).Result;
        if (result is Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult problem)
        {
            TempData["Problem"] = problem.ProblemDetails.Detail;
        }
        else
        {
            TempData["Notice"] = "Cancelled: the message is not retried any more. Replay sends it again.";
        }
        return Redirect($"/admin/webhooks/{Id}/messages/{DeliveryId}");
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var delivery = await db.WebhookDeliveries.AsNoTracking()
            .Include(d => d.Message).Include(d => d.Endpoint).Include(d => d.AttemptLog).AsSplitQuery()
            .FirstOrDefaultAsync(d => d.Id == DeliveryId && d.EndpointId == Id, ct);
        if (delivery is null)
        {
            return false;
        }
        Delivery = delivery;
        Attempts = [.. delivery.AttemptLog.OrderByDescending(a => a.Number)];
        return true;
    }

    /// <summary>The JSON envelope, indented for reading (the wire form is compact).</summary>
    public string Envelope() => Pretty(WebhookPayload.JsonEnvelope(Message));

    /// <summary>
    /// The request of an attempt: its headers as logged (secrets redacted), and its body rebuilt from the stored
    /// message, which is deterministic. Attempts logged before headers were kept show them rebuilt, without signatures.
    /// </summary>
    public SentRequest RequestOf(WebhookAttempt attempt)
    {
        var isGet = string.Equals(attempt.Method, "GET", StringComparison.OrdinalIgnoreCase);
        var format = isGet ? WebhookFormat.Query : Endpoint.Format == WebhookFormat.Query ? WebhookFormat.Json : Endpoint.Format;
        var payload = WebhookPayload.Build(format, attempt.Url, Message);
        var sentAt = attempt.AttemptedAt.AddMilliseconds(-attempt.LatencyMs).ToUnixTimeSeconds();
        var body = format == WebhookFormat.Json ? Pretty(payload.Body) : payload.Body;
        if (SentHeaders.Read(attempt.RequestHeaders) is { } logged)
        {
            return new SentRequest(attempt.Method, attempt.Url, [.. logged], isGet ? null : body);
        }
        var headers = new List<KeyValuePair<string, string>>();
        if (payload.ContentType is not null)
        {
            headers.Add(new("Content-Type", payload.ContentType + "; charset=utf-8"));
        }
        headers.Add(new("webhook-id", Message.Id));
        headers.Add(new("webhook-timestamp", sentAt.ToString(CultureInfo.InvariantCulture)));
        headers.Add(new("webhook-signature", "v1,… (one per signing secret in use; signatures are not stored)"));
        headers.Add(new("X-Request-Id", attempt.RequestId));
        headers.Add(new("User-Agent", "Referloop-Webhooks/1.0"));
        headers.AddRange(Endpoint.Headers.Select(h => new KeyValuePair<string, string>(h.Key, SentHeaders.Redacted)));
        return new SentRequest(attempt.Method, attempt.Url, headers, isGet ? null : body);
    }

    public static string Pretty(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(document.RootElement, Indented);
        }
        catch (JsonException)
        {
            return json;
        }
    }
}

public sealed record SentRequest(string Method, string Url, IReadOnlyList<KeyValuePair<string, string>> Headers, string? Body);
