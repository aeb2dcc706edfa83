using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Referloop.Http;
using Referloop.Outbound;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Webhooks;

internal static class WebhooksApi
{
    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder routes)
    {
        var endpoints = routes.MapGroup("/api/v1/webhook-endpoints")
            .WithTags("Webhooks")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        endpoints.MapPost("/", Create).WithName("CreateWebhookEndpoint")
            .WithSummary("Create a webhook endpoint; its signing secret (whsec_…), or with signing=ed25519 its public key (whpk_…), is in this answer");
        endpoints.MapGet("/", List).WithName("ListWebhookEndpoints").WithSummary("List webhook endpoints");
        endpoints.MapGet("/{id}", Get).WithName("GetWebhookEndpoint").WithSummary("Get one webhook endpoint");
        endpoints.MapPut("/{id}", Update).WithName("UpdateWebhookEndpoint")
            .WithSummary("Replace a webhook endpoint's settings (the secret is kept)");
        endpoints.MapDelete("/{id}", Delete).WithName("DeleteWebhookEndpoint")
            .WithSummary("Delete a webhook endpoint with its delivery log");
        endpoints.MapGet("/{id}/secret", Secret).WithName("GetWebhookEndpointSecret").RequireFullScope()
            .WithSummary("Get the signing secret, or an ed25519 endpoint's public key (and the previous one while a rotation overlaps)");
        endpoints.MapPost("/{id}/rotate-secret", Rotate).WithName("RotateWebhookEndpointSecret")
            .WithSummary("Replace the signing secret or ed25519 key pair; both sign until the overlap (default 24 h) ends");
        endpoints.MapPost("/{id}/enable", Enable).WithName("EnableWebhookEndpoint").WithSummary("Enable a webhook endpoint");
        endpoints.MapPost("/{id}/disable", Disable).WithName("DisableWebhookEndpoint")
            .WithSummary("Disable a webhook endpoint; its pending messages fail and can be recovered later; the other endpoints get endpoint.disabled");
        endpoints.MapGet("/{id}/messages", Messages).WithName("ListWebhookEndpointMessages")
            .WithSummary("List the messages sent to an endpoint, newest last, each with its attempts");
        endpoints.MapPost("/{id}/recover", Recover).WithName("RecoverWebhookEndpoint")
            .WithSummary("Send again every failed message of this endpoint created since a time")
            .WithDescription("Messages whose body was purged (dataPurgedAt: an erasure, or Webhooks:DeliveredBodyRetentionDays) " +
                "are left failed and not counted. 409 when the endpoint is disabled.");
        endpoints.MapPost("/{id}/test", SendTest).WithName("SendWebhookTestMessage")
            .WithSummary("Send an example message of any event type now and answer with the attempt");

        var messages = routes.MapGroup("/api/v1/messages")
            .WithTags("Webhooks")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();
        messages.MapGet("/{id}", GetMessage).WithName("GetWebhookMessage")
            .WithSummary("Get a message by its webhook-id (msg_…, all endpoints) or delivery id (dlv_…, one endpoint)");
        messages.MapPost("/{id}/replay", Replay).WithName("ReplayWebhookMessage")
            .WithSummary("Send a message again with the same webhook-id: one delivery (dlv_…) or to every endpoint (msg_…)")
            .WithDescription("Failed, succeeded and cancelled deliveries start a fresh retry schedule; a pending one is made due now. " +
                "409 when the message's body was purged (dataPurgedAt: an erasure of a participant it is about, or " +
                "Webhooks:DeliveredBodyRetentionDays), or when every endpoint it went to is disabled.");
        messages.MapPost("/{id}/cancel", Cancel).WithName("CancelWebhookMessage")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Stop retrying a pending message: one delivery (dlv_…) or to every endpoint (msg_…); it becomes cancelled")
            .WithDescription("For a referral.approved retried until acknowledged this ends the wait without a 2xx: its rewards " +
                "stay held until POST /api/v1/referrals/{id}/release-rewards or an acknowledgement of a replay. " +
                "404 when no message or delivery has this id; 409 when none of its deliveries is pending any more.");
        return routes;
    }

    internal static async Task<Results<Created<WebhookEndpointResponse>, ValidationProblem>> Create(WebhookEndpointInput input,
        ReferloopDb db, NetworkGuard guard, WebhookKeys keys, TimeProvider clock, CancellationToken ct)
    {
        if (await CheckAsync(input, db, guard, ct) is { } problem)
        {
            return problem;
        }
        var now = clock.GetUtcNow();
        var ed25519 = input.Signing == WebhookSigning.Ed25519;
        var endpoint = new WebhookEndpoint
        {
            Id = Ids.New("whe"),
            Url = input.Url!.Trim(),
            Format = input.Format ?? WebhookFormat.Json,
            Signing = ed25519 ? WebhookSigning.Ed25519 : WebhookSigning.Hmac,
            // An Ed25519 endpoint has no shared secret at all: a receiver cannot forge what it cannot sign.
            Secret = ed25519 ? "" : WebhookSignature.NewSecret(),
            CreatedAt = now,
            UpdatedAt = now,
        };
        if (ed25519)
        {
            (endpoint.PublicKey, endpoint.PrivateKey) = keys.NewPair();
        }
        Apply(endpoint, input, now);
        db.WebhookEndpoints.Add(endpoint);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/webhook-endpoints/{endpoint.Id}",
            WebhookEndpointResponse.From(endpoint, now) with { Secret = ed25519 ? null : endpoint.Secret });
    }

    private static async Task<Ok<Page<WebhookEndpointResponse>>> List([AsParameters] PageQuery query, ClaimsPrincipal user,
        ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var rows = db.WebhookEndpoints.AsNoTracking();
        if (after is not null)
        {
            rows = rows.Where(e => string.Compare(e.Id, after) > 0);
        }
        var list = await rows.OrderBy(e => e.Id).Take(limit + 1).ToListAsync(ct);
        var now = clock.GetUtcNow();
        return TypedResults.Ok(Paging.ToPage(list, limit, e => e.Id, e => ForReader(WebhookEndpointResponse.From(e, now), user)));
    }

    private static async Task<Results<Ok<WebhookEndpointResponse>, ProblemHttpResult>> Get(string id, ClaimsPrincipal user,
        ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct);
        return endpoint is null ? NotFound(id) : TypedResults.Ok(ForReader(WebhookEndpointResponse.From(endpoint, clock.GetUtcNow()), user));
    }

    /// <summary>
    /// An endpoint as a key other than a full-scope one reads it: its URL reduced to its origin and its custom headers
    /// by name, their values redacted, as the attempt log shows them: both often hold the receiver's credentials.
    /// </summary>
    private static WebhookEndpointResponse ForReader(WebhookEndpointResponse endpoint, ClaimsPrincipal user) =>
        IsFullScope(user) ? endpoint : endpoint with
        {
            Url = WebhookEndpoint.Origin(endpoint.Url),
            Headers = endpoint.Headers.ToDictionary(h => h.Key, _ => SentHeaders.Redacted),
        };

    /// <summary>A delivery as a key other than a full-scope one reads it: its attempts' URLs reduced to their origin.</summary>
    private static DeliveryResponse ForReader(DeliveryResponse delivery, ClaimsPrincipal user) =>
        IsFullScope(user) ? delivery : delivery with
        {
            Attempts = delivery.Attempts.Select(a => a with { Url = WebhookEndpoint.Origin(a.Url) }).ToList(),
        };

    private static bool IsFullScope(ClaimsPrincipal user) => user.FindFirst(ApiKeyScope.ClaimType)?.Value == ApiKeyScope.Full;

    internal static async Task<Results<Ok<WebhookEndpointResponse>, ValidationProblem, ProblemHttpResult>> Update(string id,
        WebhookEndpointInput input, ReferloopDb db, NetworkGuard guard, DeliveryEngine engine, TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        if (await CheckAsync(input, db, guard, ct, endpoint) is { } problem)
        {
            return problem;
        }
        var now = clock.GetUtcNow();
        endpoint.Url = input.Url!.Trim();
        endpoint.Format = input.Format ?? WebhookFormat.Json;
        var wasEnabled = endpoint.Enabled;
        Apply(endpoint, input, now);
        await SaveAsync(db, engine, endpoint, disabledByHand: wasEnabled && !endpoint.Enabled, now, ct);
        return TypedResults.Ok(WebhookEndpointResponse.From(endpoint, now));
    }

    /// <summary>
    /// Saves a change of <paramref name="endpoint"/>. One that disabled it by hand raises <c>endpoint.disabled</c> and
    /// ends its pending deliveries in the same transaction, having locked them first, as the recorder does before it
    /// writes an endpoint's health (the other order could deadlock with it on PostgreSQL); after the commit, the
    /// deliveries this instance holds waiting are dropped before the caller answers.
    /// </summary>
    private static async Task SaveAsync(ReferloopDb db, DeliveryEngine engine, WebhookEndpoint endpoint, bool disabledByHand,
        DateTimeOffset now, CancellationToken ct)
    {
        if (disabledByHand)
        {
            EndpointState.AddDisabledEvent(db, endpoint, DisabledReason.Manual, endpoint.DisabledReason!, now);
        }
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (disabledByHand)
        {
            await EndpointState.LockPendingAsync(db, endpoint.Id, ct);
        }
        await db.SaveChangesAsync(ct);
        if (disabledByHand)
        {
            await EndpointState.FailPendingAsync(db, endpoint.Id, "The endpoint was disabled by an administrator.", now, ct);
        }
        await transaction.CommitAsync(ct);
        if (disabledByHand)
        {
            await engine.DropStoppedAsync();
        }
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(string id, ReferloopDb db, DeliveryEngine engine,
        CancellationToken ct)
    {
        // Its deliveries go with it (a cascade); the pending ones are locked first, as the recorder locks them.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await EndpointState.LockPendingAsync(db, id, ct);
        var deleted = await db.WebhookEndpoints.Where(e => e.Id == id).ExecuteDeleteAsync(ct);
        await transaction.CommitAsync(ct);
        if (deleted == 0)
        {
            return NotFound(id);
        }
        await engine.DropStoppedAsync();
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<EndpointSecretResponse>, ProblemHttpResult>> Secret(string id, ReferloopDb db,
        TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct);
        return endpoint is null ? NotFound(id) : TypedResults.Ok(EndpointSecretResponse.From(endpoint, clock.GetUtcNow()));
    }

    internal static async Task<Results<Ok<EndpointSecretResponse>, ProblemHttpResult>> Rotate(string id,
        [FromBody] RotateSecretInput? input, ReferloopDb db, WebhookKeys keys, TimeProvider clock, IOptions<WebhookOptions> options,
        CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        var now = clock.GetUtcNow();
        var overlap = input?.OverlapHours is { } hours ? TimeSpan.FromHours(hours) : options.Value.RotationOverlap;
        var overlapping = overlap > TimeSpan.Zero;
        endpoint.PreviousSecretExpiresAt = overlapping ? now + overlap : null;
        if (endpoint.Signing == WebhookSigning.Ed25519)
        {
            endpoint.PreviousPublicKey = overlapping ? endpoint.PublicKey : null;
            endpoint.PreviousPrivateKey = overlapping ? endpoint.PrivateKey : null;
            (endpoint.PublicKey, endpoint.PrivateKey) = keys.NewPair();
        }
        else
        {
            endpoint.PreviousSecret = overlapping ? endpoint.Secret : null;
            endpoint.Secret = WebhookSignature.NewSecret();
        }
        endpoint.UpdatedAt = now;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(EndpointSecretResponse.From(endpoint, now));
    }

    internal static async Task<Results<Ok<WebhookEndpointResponse>, ProblemHttpResult>> Enable(string id, ReferloopDb db,
        TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        var now = clock.GetUtcNow();
        if (!endpoint.Enabled)
        {
            endpoint.Enabled = true;
            endpoint.DisabledAt = null;
            endpoint.DisabledReason = null;
            endpoint.FailingSince = null;
            endpoint.UpdatedAt = now;
            await db.SaveChangesAsync(ct);
        }
        return TypedResults.Ok(WebhookEndpointResponse.From(endpoint, now));
    }

    internal static async Task<Results<Ok<WebhookEndpointResponse>, ProblemHttpResult>> Disable(string id, ReferloopDb db,
        DeliveryEngine engine, TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        var now = clock.GetUtcNow();
        if (endpoint.Enabled)
        {
            endpoint.Enabled = false;
            endpoint.DisabledAt = now;
            endpoint.DisabledReason = "Disabled by an administrator.";
            endpoint.UpdatedAt = now;
            await SaveAsync(db, engine, endpoint, disabledByHand: true, now, ct);
        }
        return TypedResults.Ok(WebhookEndpointResponse.From(endpoint, now));
    }

    private static async Task<Results<Ok<Page<DeliveryResponse>>, ProblemHttpResult>> Messages(string id,
        [AsParameters] DeliveryListQuery query, ClaimsPrincipal user, ReferloopDb db, CancellationToken ct)
    {
        if (!await db.WebhookEndpoints.AnyAsync(e => e.Id == id, ct))
        {
            return NotFound(id);
        }
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var rows = db.WebhookDeliveries.AsNoTracking().Where(d => d.EndpointId == id);
        if (query.Status is not null)
        {
            rows = rows.Where(d => d.Status == query.Status);
        }
        if (after is not null)
        {
            rows = rows.Where(d => string.Compare(d.Id, after) > 0);
        }
        var list = await rows.OrderBy(d => d.Id).Take(limit + 1)
            .Include(d => d.Message).Include(d => d.Endpoint).Include(d => d.AttemptLog).AsSplitQuery().ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(list, limit, d => d.Id, d => ForReader(DeliveryResponse.From(d), user)));
    }

    internal static async Task<Results<Ok<RecoverResponse>, ProblemHttpResult>> Recover(string id, RecoverInput input,
        ReferloopDb db, OutboxSignal signal, TimeProvider clock, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        if (!endpoint.Enabled)
        {
            return Problems.Conflict("The endpoint is disabled; enable it before recovering its messages.");
        }
        var now = clock.GetUtcNow();
        // In UTC: PostgreSQL's driver refuses to write an instant with another offset.
        var since = input.Since!.Value.ToUniversalTime();
        var recovered = await db.WebhookDeliveries
            .Where(d => d.EndpointId == id && d.Status == DeliveryStatus.Failed && d.CreatedAt >= since && d.Message!.DataPurgedAt == null)
            .ExecuteUpdateAsync(s => Requeue(s, now), ct);
        signal.Poke();
        return TypedResults.Ok(new RecoverResponse(recovered));
    }

    internal static async Task<Results<Ok<DeliveryResponse>, ProblemHttpResult>> SendTest(string id, TestMessageInput input,
        ReferloopDb db, DeliverySender sender, TimeProvider clock, IOptions<WebhookOptions> options, CancellationToken ct)
    {
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct);
        if (endpoint is null)
        {
            return NotFound(id);
        }
        if (!endpoint.Enabled)
        {
            return Problems.Conflict("The endpoint is disabled; enable it before sending a test message.");
        }
        var now = clock.GetUtcNow();
        var message = new OutboxMessage
        {
            Id = Ids.New("msg"),
            Type = input.EventType!,
            CampaignId = endpoint.CampaignId,
            Data = ExamplePayloads.Data[input.EventType!],
            CreatedAt = now,
            // Already dispatched: a test goes to this endpoint only, through the delivery below.
            DispatchedAt = now,
        };
        var delivery = new WebhookDelivery
        {
            Id = Ids.New("dlv"),
            MessageId = message.Id,
            EndpointId = endpoint.Id,
            Status = DeliveryStatus.Pending,
            NextAttemptAt = now,
            // Held by this request while it sends; should the request die, the lease runs out and the engine retries.
            // Nothing renews it, so it lasts the whole attempt (the send timeout) and a lease beyond: a receiver slower
            // than the lease must not get the test twice.
            ClaimedBy = DeliverySender.ApiHolder,
            ClaimedUntil = now + options.Value.Timeout + options.Value.ClaimLease,
            IsTest = true,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Outbox.Add(message);
        db.WebhookDeliveries.Add(delivery);
        await db.SaveChangesAsync(ct);
        await sender.DeliverAsync(delivery.Id, ct);
        db.ChangeTracker.Clear();
        var sent = await db.WebhookDeliveries.AsNoTracking().Include(d => d.Message).Include(d => d.Endpoint).Include(d => d.AttemptLog)
            .FirstAsync(d => d.Id == delivery.Id, ct);
        return TypedResults.Ok(DeliveryResponse.From(sent));
    }

    private static async Task<Results<Ok<MessageResponse>, ProblemHttpResult>> GetMessage(string id, ClaimsPrincipal user, ReferloopDb db,
        CancellationToken ct)
    {
        var deliveries = db.WebhookDeliveries.AsNoTracking()
            .Include(d => d.Message).Include(d => d.Endpoint).Include(d => d.AttemptLog).AsSplitQuery();
        var list = id.StartsWith("dlv_", StringComparison.Ordinal)
            ? await deliveries.Where(d => d.Id == id).ToListAsync(ct)
            : await deliveries.Where(d => d.MessageId == id).OrderBy(d => d.Id).ToListAsync(ct);
        var message = list.FirstOrDefault()?.Message
            ?? await db.Outbox.AsNoTracking().FirstOrDefaultAsync(m => m.Id == id, ct);
        if (message is null)
        {
            return Problems.NotFound("message", id);
        }
        using var data = JsonDocument.Parse(message.Data);
        return TypedResults.Ok(new MessageResponse(message.Id, message.Type, message.CampaignId, message.CreatedAt,
            data.RootElement.Clone(), list.Select(d => ForReader(DeliveryResponse.From(d), user)).ToList())
        {
            DataPurgedAt = message.DataPurgedAt,
        });
    }

    internal static async Task<Results<Accepted<ReplayResponse>, ProblemHttpResult>> Replay(string id, ReferloopDb db,
        OutboxSignal signal, TimeProvider clock, CancellationToken ct)
    {
        var byDelivery = id.StartsWith("dlv_", StringComparison.Ordinal);
        var targets = await db.WebhookDeliveries.AsNoTracking()
            .Where(d => byDelivery ? d.Id == id : d.MessageId == id)
            .Select(d => new { d.Id, d.Status, d.Endpoint!.Enabled, d.Message!.DataPurgedAt })
            .ToListAsync(ct);
        if (targets.Count == 0)
        {
            return Problems.NotFound("message", id);
        }
        // Whoever cancelled it, a cancelled delivery replays like a failed one; what cannot be sent again is a body
        // that no longer holds what was sent.
        if (targets.Any(t => t.DataPurgedAt is not null))
        {
            return Problems.Conflict("The message's body was purged (a participant it is about was erased, or " +
                "Webhooks:DeliveredBodyRetentionDays passed); it cannot be replayed.");
        }
        var enabled = targets.Where(t => t.Enabled).ToList();
        if (enabled.Count == 0)
        {
            return Problems.Conflict("The endpoint is disabled; enable it before replaying its messages.");
        }
        var now = clock.GetUtcNow();
        var done = enabled.Where(t => t.Status != DeliveryStatus.Pending).Select(t => t.Id).ToList();
        var pending = enabled.Where(t => t.Status == DeliveryStatus.Pending).Select(t => t.Id).ToList();
        await db.WebhookDeliveries.Where(d => done.Contains(d.Id) && d.Status != DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => Requeue(s, now), ct);
        // A pending one may be in flight right now: keep its claim, just make it due with a fresh schedule.
        await db.WebhookDeliveries.Where(d => pending.Contains(d.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Round, 0).SetProperty(d => d.NextAttemptAt, now), ct);
        signal.Poke();
        return TypedResults.Accepted($"/api/v1/messages/{id}", new ReplayResponse(enabled.Count, enabled.Select(t => t.Id).ToList()));
    }

    internal static async Task<Results<Ok<CancelResponse>, ProblemHttpResult>> Cancel(string id, ReferloopDb db,
        DeliveryEngine engine, TimeProvider clock, CancellationToken ct)
    {
        var byDelivery = id.StartsWith("dlv_", StringComparison.Ordinal);
        var targets = await db.WebhookDeliveries.AsNoTracking()
            .Where(d => byDelivery ? d.Id == id : d.MessageId == id)
            .Select(d => new { d.Id, d.Status })
            .ToListAsync(ct);
        if (targets.Count == 0)
        {
            return Problems.NotFound("message", id);
        }
        var pending = targets.Where(t => t.Status == DeliveryStatus.Pending).Select(t => t.Id).ToList();
        if (pending.Count == 0)
        {
            return Problems.Conflict("Nothing to cancel: the message is not pending (it succeeded, failed or was cancelled already).");
        }
        var now = clock.GetUtcNow();
        // An attempt on the wire is dropped when it returns (the recorder skips cancelled deliveries), 2xx or not. The
        // claim stays with its holder, which lets go of it then (or drops it unsent, below or at its next renewal): cleared
        // here, a replay right after would make the delivery claimable while that attempt is still on the wire.
        var cancelled = await db.WebhookDeliveries.Where(d => pending.Contains(d.Id) && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.LastError, "Cancelled by an administrator.")
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.UpdatedAt, now), ct);
        if (cancelled > 0)
        {
            // Held waiting for a slot (by this instance or another), they would otherwise go out until the holder's next
            // lease renewal.
            await engine.DropStoppedAsync();
        }
        return TypedResults.Ok(new CancelResponse(cancelled, pending));
    }

    /// <summary>
    /// Makes an ended delivery pending and due now. Its claim is left alone: a live one means an attempt may still be
    /// on the wire (cancelled, or its endpoint disabled, meanwhile), and the delivery is claimed again only once its
    /// holder let go of it or stopped renewing it.
    /// </summary>
    private static void Requeue(Microsoft.EntityFrameworkCore.Query.UpdateSettersBuilder<WebhookDelivery> s, DateTimeOffset now) => s
        .SetProperty(d => d.Status, DeliveryStatus.Pending)
        .SetProperty(d => d.Round, 0)
        .SetProperty(d => d.NextAttemptAt, now)
        .SetProperty(d => d.CompletedAt, (DateTimeOffset?)null)
        .SetProperty(d => d.UpdatedAt, now);

    private static void Apply(WebhookEndpoint endpoint, WebhookEndpointInput input, DateTimeOffset now)
    {
        endpoint.Description = string.IsNullOrWhiteSpace(input.Description) ? null : input.Description.Trim();
        endpoint.EventTypes = input.EventTypes?.Distinct(StringComparer.Ordinal).ToList() ?? [];
        endpoint.CampaignId = string.IsNullOrWhiteSpace(input.CampaignId) ? null : input.CampaignId;
        endpoint.RateLimitPerSecond = input.RateLimitPerSecond;
        endpoint.Headers = input.Headers ?? [];
        endpoint.RetryUntilAcknowledged = input.RetryUntilAcknowledged ?? WebhookEndpoint.ReceivesApprovals(endpoint.EventTypes);
        endpoint.UpdatedAt = now;
        var enabled = input.Enabled ?? true;
        if (enabled && !endpoint.Enabled)
        {
            endpoint.DisabledAt = null;
            endpoint.DisabledReason = null;
            endpoint.FailingSince = null;
        }
        else if (!enabled && endpoint.Enabled)
        {
            endpoint.DisabledAt = now;
            endpoint.DisabledReason = "Disabled by an administrator.";
        }
        endpoint.Enabled = enabled;
    }

    /// <summary>The checks that need the database or DNS: the campaign exists, and the URL is not an internal address.</summary>
    private static async Task<ValidationProblem?> CheckAsync(WebhookEndpointInput input, ReferloopDb db, NetworkGuard guard,
        CancellationToken ct, WebhookEndpoint? existing = null)
    {
        var errors = new ValidationErrors();
        if (existing is not null && input.Signing is not null && input.Signing != existing.Signing)
        {
            errors.Add("signing", $"cannot be changed after creation (this endpoint signs with '{existing.Signing}'); create a new endpoint instead.");
        }
        if (!string.IsNullOrWhiteSpace(input.CampaignId) && !await db.Campaigns.AnyAsync(c => c.Id == input.CampaignId, ct))
        {
            errors.Add("campaignId", $"must be the id of an existing campaign (there is no campaign '{input.CampaignId}').");
        }
        if (await guard.CheckUrlAsync(input.Url!.Trim(), ct) is { } refusal)
        {
            errors.Add("url", refusal);
        }
        return errors.IsEmpty
            ? null
            : TypedResults.ValidationProblem(errors.ToDictionary(),
                title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.");
    }

    private static ProblemHttpResult NotFound(string id) => Problems.NotFound("webhook endpoint", id);
}

public sealed record PageQuery(string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors) => Paging.ValidateQuery(errors, Cursor, Limit);
}
