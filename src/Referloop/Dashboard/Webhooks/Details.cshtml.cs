using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Dashboard.Shared;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

/// <summary>One endpoint: its settings and health, its secret, test sends, recovery and the message log.</summary>
public sealed class EndpointDetailsModel(ReferloopDb db, TimeProvider clock, OutboxSignal signal, DeliverySender sender,
    WebhookKeys keys, IOptions<WebhookOptions> options, DeliveryEngine engine) : PageModel
{
    public const int LogSize = 50;

    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public WebhookEndpoint Endpoint { get; private set; } = null!;
    public string? CampaignName { get; private set; }
    public IReadOnlyList<DeliveryRow> Deliveries { get; private set; } = [];
    public string? OlderCursor { get; private set; }
    public string? NewerCursor { get; private set; }
    public IReadOnlyDictionary<string, int> Counts { get; private set; } = new Dictionary<string, int>();
    public DateTimeOffset Now { get; private set; }

    /// <summary>The secret, right after creation or rotation only.</summary>
    public string? NewSecret { get; private set; }

    public bool Rotating => (Endpoint.PreviousSecret is not null || Endpoint.PreviousPublicKey is not null) && Endpoint.PreviousSecretExpiresAt > Now;
    public bool Ed25519 => Endpoint.Signing == WebhookSigning.Ed25519;
    public int DefaultOverlapHours => (int)options.Value.RotationOverlap.TotalHours;

    /// <summary>Default of the recover form: a day ago, in the UTC wall-clock form datetime-local expects.</summary>
    public string RecoverDefault => Now.UtcDateTime.AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm", System.Globalization.CultureInfo.InvariantCulture);

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (Status is not null && !DeliveryStatus.All.Contains(Status))
        {
            Status = null;
        }
        if (!await LoadAsync(ct))
        {
            return NotFound();
        }
        NewSecret = TempData["Secret"] as string;
        return Page();
    }

    public async Task<IActionResult> OnPostEnableAsync(CancellationToken ct) =>
        Done((await WebhooksApi.Enable(Id, db, clock, ct)).Result, "Endpoint enabled: new events are delivered again. " +
            "Messages that failed while it was off can be sent with “Recover”.");

    public async Task<IActionResult> OnPostDisableAsync(CancellationToken ct) =>
        Done((await WebhooksApi.Disable(Id, db, engine, clock, ct)).Result, "Endpoint disabled: nothing is sent to it, and its pending messages were marked failed.");

    public async Task<IActionResult> OnPostRotateAsync(int? overlapHours, CancellationToken ct)
    {
        var input = new RotateSecretInput(overlapHours);
        if (Invalid(input) is { } refusal)
        {
            return refusal;
        }
        var result = (await WebhooksApi.Rotate(Id, input, db, keys, clock, options, ct)).Result;
        if (result is Ok<EndpointSecretResponse> { Value: { } secret })
        {
            TempData["Secret"] = secret.Secret;
            var what = secret.Secret is null ? "key pair" : "secret";
            TempData["Notice"] = secret.PreviousSecretExpiresAt is { } until
                ? $"New {what}. Until {until.UtcDateTime:yyyy-MM-dd HH:mm} UTC every message is signed with both the old and the new {what}: update your receiver before then."
                : $"New {what} with no overlap: only it signs from now on.";
        }
        return Done(result, null);
    }

    public async Task<IActionResult> OnPostRecoverAsync(DateTime? since, CancellationToken ct)
    {
        var input = new RecoverInput(since is { } local ? new DateTimeOffset(DateTime.SpecifyKind(local, DateTimeKind.Utc)) : null);
        if (Invalid(input) is { } refusal)
        {
            return refusal;
        }
        var result = (await WebhooksApi.Recover(Id, input, db, signal, clock, ct)).Result;
        return Done(result, result is Ok<RecoverResponse> { Value: { } recovered }
            ? recovered.Recovered == 0
                ? $"No failed messages since {input.Since:yyyy-MM-dd HH:mm} UTC: nothing to send again."
                : $"{recovered.Recovered} failed message{(recovered.Recovered == 1 ? "" : "s")} since {input.Since:yyyy-MM-dd HH:mm} UTC queued to be sent again."
            : null);
    }

    public async Task<IActionResult> OnPostCancelAsync(string deliveryId, CancellationToken ct)
    {
        var owned = await db.WebhookDeliveries.AnyAsync(d => d.Id == deliveryId && d.EndpointId == Id, ct);
        if (!owned)
        {
            return NotFound();
        }
        var result = (await WebhooksApi.Cancel(deliveryId, db, engine, clock, ct)).Result;
        return Done(result, "Message cancelled: it is not retried any more. Replay sends it again.");
    }

    public async Task<IActionResult> OnPostReplayAsync(string deliveryId, CancellationToken ct)
    {
        var owned = await db.WebhookDeliveries.AnyAsync(d => d.Id == deliveryId && d.EndpointId == Id, ct);
        if (!owned)
        {
            return NotFound();
        }
        var result = (await WebhooksApi.Replay(deliveryId, db, signal, clock, ct)).Result;
        return Done(result, "Message queued to be sent again, with the same webhook-id.");
    }

    /// <summary>
    /// Sends an example message now. A script asking for JSON gets the delivery (and then polls it); a plain form post
    /// lands on the message's page.
    /// </summary>
    public async Task<IActionResult> OnPostTestAsync(string? eventType, CancellationToken ct)
    {
        var input = new TestMessageInput(eventType);
        var errors = new Http.ValidationErrors();
        input.Validate(errors);
        var wantsJson = Request.Headers.Accept.Any(a => a?.Contains("application/json", StringComparison.Ordinal) == true);
        if (!errors.IsEmpty)
        {
            var detail = string.Join(" ", errors.ToDictionary().Select(e => $"{e.Key} {string.Join(" ", e.Value)}"));
            return wantsJson ? new JsonResult(new { error = detail }) { StatusCode = 400 } : ShowProblem(detail);
        }
        var result = (await WebhooksApi.SendTest(Id, input, db, sender, clock, options, ct)).Result;
        switch (result)
        {
            case Ok<DeliveryResponse> { Value: { } delivery }:
                return wantsJson
                    ? new JsonResult(new { delivery, page = MessageUrl(delivery.Id), status = $"{MessageUrl(delivery.Id)}?handler=Status" })
                    : Redirect(MessageUrl(delivery.Id));
            case ProblemHttpResult { StatusCode: StatusCodes.Status404NotFound }:
                return NotFound();
            case ProblemHttpResult problem:
                return wantsJson ? new JsonResult(new { error = problem.ProblemDetails.Detail }) { StatusCode = problem.StatusCode } : ShowProblem(problem.ProblemDetails.Detail);
            default:
                return Redirect($"/admin/webhooks/{Id}");
        }
    }

    private string MessageUrl(string deliveryId) => $"/admin/webhooks/{Id}/messages/{deliveryId}";

    private IActionResult? Invalid(Http.IValidatable input)
    {
        var errors = new Http.ValidationErrors();
        input.Validate(errors);
        return errors.IsEmpty ? null
            : ShowProblem(string.Join(" ", errors.ToDictionary().Select(e => $"{e.Key} {string.Join(" ", e.Value)}")));
    }

    private IActionResult ShowProblem(string? detail)
    {
        TempData["Problem"] = detail;
        return Redirect($"/admin/webhooks/{Id}");
    }

    private IActionResult Done(IResult result, string? notice)
    {
        if (result is ProblemHttpResult problem)
        {
            return problem.StatusCode == StatusCodes.Status404NotFound ? NotFound() : ShowProblem(problem.ProblemDetails.Detail);
        }
        if (notice is not null)
        {
            TempData["Notice"] = notice;
        }
        return Redirect($"/admin/webhooks/{Id}");
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == Id, ct);
        if (endpoint is null)
        {
            return false;
        }
        Endpoint = endpoint;
        Now = clock.GetUtcNow();
        CampaignName = endpoint.CampaignId is null ? null
            : await db.Campaigns.Where(c => c.Id == endpoint.CampaignId).Select(c => c.Name).FirstOrDefaultAsync(ct);
        var deliveries = db.WebhookDeliveries.AsNoTracking().Where(d => d.EndpointId == Id);
        Counts = (await deliveries.GroupBy(d => d.Status).Select(g => new { g.Key, Count = g.Count() }).ToListAsync(ct))
            .ToDictionary(g => g.Key, g => g.Count);
        if (Status is not null)
        {
            deliveries = deliveries.Where(d => d.Status == Status);
        }
        var untilAcknowledged = endpoint.RetryUntilAcknowledged;
        var log = await Keyset.NewestFirstAsync(deliveries, d => d.Id,
            d => new DeliveryRow(d.Id, d.MessageId, d.Message!.Type, d.Status, d.Attempts, d.LastStatusCode, d.LastError,
                d.IsTest, d.CreatedAt, d.Status == DeliveryStatus.Pending ? d.NextAttemptAt : null,
                untilAcknowledged && !d.IsTest && d.Message!.Type == EventTypes.ReferralApproved),
            row => row.Id, Before, After, LogSize, ct);
        (Deliveries, OlderCursor, NewerCursor) = (log.Rows, log.Older, log.Newer);
        return true;
    }

    /// <summary>The message log's address with its status filter kept; a cursor pages it.</summary>
    public string LogLink(string? before = null, string? after = null)
    {
        var query = new List<string>();
        if (Status is not null)
        {
            query.Add("status=" + Uri.EscapeDataString(Status));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        if (after is not null)
        {
            query.Add("after=" + Uri.EscapeDataString(after));
        }
        return $"/admin/webhooks/{Id}" + (query.Count == 0 ? "" : "?" + string.Join("&", query)) + "#messages";
    }
}

public sealed record DeliveryRow(string Id, string MessageId, string Type, string Status, int Attempts, int? LastStatusCode,
    string? LastError, bool Test, DateTimeOffset CreatedAt, DateTimeOffset? NextAttemptAt, bool UntilAcknowledged)
{
    /// <summary>Pending and retried until a 2xx: rewards wait for it, so it reads "waiting" rather than "pending".</summary>
    public bool Waiting => UntilAcknowledged && Status == DeliveryStatus.Pending;

    public string Shown => Waiting ? "waiting" : Status;
}
