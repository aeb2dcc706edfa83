using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.InboundHooks;

public sealed record CreateInboundHook([Required, StringLength(40)] string? CampaignId, [Required, Values(typeof(InboundHookKind))] string? Kind,
    [StringLength(200)] string? Name, bool? Signed) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        errors.Required("campaignId", CampaignId, 40);
        errors.OneOf("kind", Kind, InboundHookKind.All);
        errors.MaxLength("name", Name, 200);
    }
}

public sealed record InboundHookResponse(
    string Id,
    string CampaignId,
    string Kind,
    string? Name,
    string UrlPrefix, // the full URL was shown once, at creation; the start of it lets an operator recognise it
    bool Signed,
    long Conversions,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastReceivedAt,
    DateTimeOffset? RevokedAt)
{
    public static InboundHookResponse From(InboundHook h, PublicUrls urls) => new(h.Id, h.CampaignId, h.Kind, h.Name,
        $"{urls.Base}/hooks/{h.TokenPrefix}…", h.SigningSecret is not null, h.Conversions, h.CreatedAt, h.LastReceivedAt, h.RevokedAt);
}

/// <summary>The one answer that holds the full URL (and the signing secret, when the hook verifies signatures).</summary>
public sealed record CreatedInboundHook(
    string Id,
    string CampaignId,
    string Kind,
    string? Name,
    string Url,
    string UrlPrefix,
    bool Signed,
    string? SigningSecret,
    long Conversions,
    DateTimeOffset CreatedAt);

public sealed record InboundRequestResponse(
    string Id,
    string HookId,
    DateTimeOffset ReceivedAt,
    string? ContentType,
    JsonObject Headers,
    string? Body,
    int BodyBytes,
    string? RemoteIp,
    string? IdempotencyKey,
    string Outcome,
    string? Reason,
    JsonNode? Result,
    DateTimeOffset? ProcessedAt)
{
    public static InboundRequestResponse From(InboundRequest r) => new(r.Id, r.HookId, r.ReceivedAt, r.ContentType,
        JsonNode.Parse(r.Headers) as JsonObject ?? [], r.Body, r.BodyBytes, r.RemoteIp, r.IdempotencyKey, r.Outcome, r.Reason,
        r.Result is null ? null : JsonNode.Parse(r.Result), r.ProcessedAt);
}

public sealed record InboundHookListQuery(string? CampaignId, [property: Values(typeof(InboundHookKind))] string? Kind, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Kind is not null)
        {
            errors.OneOf("kind", Kind, InboundHookKind.All);
        }
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

public sealed record InboundRequestListQuery(string? Outcome, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Outcome is not null)
        {
            errors.OneOf("outcome", Outcome, InboundOutcomeStatus.Received, InboundOutcomeStatus.Processed,
                InboundOutcomeStatus.Duplicate, InboundOutcomeStatus.Rejected, InboundOutcomeStatus.Failed);
        }
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

internal static class InboundHooksApi
{
    public static RouteGroupBuilder MapInboundHooks(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/inbound-hooks")
            .WithTags("Inbound hooks")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapPost("/", Create).WithName("CreateInboundHook")
            .WithSummary("Create a hook URL for a campaign and kind; the URL (and signing secret) are shown only in this answer");
        group.MapGet("/", List).WithName("ListInboundHooks").WithSummary("List inbound hooks, oldest first, with cursor pagination");
        group.MapGet("/{id}", Get).WithName("GetInboundHook").WithSummary("Get one inbound hook with its conversion count");
        group.MapDelete("/{id}", Revoke).WithName("RevokeInboundHook").WithSummary("Revoke a hook: its URL answers 401 from now on");
        group.MapGet("/{id}/requests", Requests).WithName("ListInboundRequests")
            .WithSummary("The requests a hook received, newest first, each raw with its outcome");
        return group;
    }

    internal static async Task<Results<Created<CreatedInboundHook>, ValidationProblem>> Create(CreateInboundHook input,
        ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct)
    {
        if (!await db.Campaigns.AnyAsync(c => c.Id == input.CampaignId, ct))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["campaignId"] = [$"must be the id of an existing campaign (got '{input.CampaignId}')."],
            }, title: "The request is not valid.");
        }
        var token = Secrets.NewToken("hk");
        var hook = new InboundHook
        {
            Id = Ids.New("hok"),
            CampaignId = input.CampaignId!,
            Kind = input.Kind!,
            Name = string.IsNullOrWhiteSpace(input.Name) ? null : input.Name.Trim(),
            TokenHash = Secrets.Hash(token),
            TokenPrefix = token[..10],
            SigningSecret = input.Signed == true ? WebhookSignature.NewSecret() : null,
            CreatedAt = clock.GetUtcNow(),
        };
        db.InboundHooks.Add(hook);
        await db.SaveChangesAsync(ct);
        var shown = InboundHookResponse.From(hook, urls);
        return TypedResults.Created($"/api/v1/inbound-hooks/{hook.Id}", new CreatedInboundHook(hook.Id, hook.CampaignId, hook.Kind,
            hook.Name, $"{urls.Base}/hooks/{token}", shown.UrlPrefix, shown.Signed, hook.SigningSecret, 0, hook.CreatedAt));
    }

    private static async Task<Ok<Page<InboundHookResponse>>> List([AsParameters] InboundHookListQuery query, ReferloopDb db,
        PublicUrls urls, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var hooks = db.InboundHooks.AsNoTracking();
        if (query.CampaignId is not null)
        {
            hooks = hooks.Where(h => h.CampaignId == query.CampaignId);
        }
        if (query.Kind is not null)
        {
            hooks = hooks.Where(h => h.Kind == query.Kind);
        }
        if (after is not null)
        {
            hooks = hooks.Where(h => string.Compare(h.Id, after) > 0);
        }
        var rows = await hooks.OrderBy(h => h.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, h => h.Id, h => InboundHookResponse.From(h, urls)));
    }

    private static async Task<Results<Ok<InboundHookResponse>, ProblemHttpResult>> Get(string id, ReferloopDb db,
        PublicUrls urls, CancellationToken ct)
    {
        var hook = await db.InboundHooks.AsNoTracking().FirstOrDefaultAsync(h => h.Id == id, ct);
        return hook is null ? Problems.NotFound("inbound hook", id) : TypedResults.Ok(InboundHookResponse.From(hook, urls));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Revoke(string id, ReferloopDb db, TimeProvider clock,
        CancellationToken ct)
    {
        var hook = await db.InboundHooks.FirstOrDefaultAsync(h => h.Id == id, ct);
        if (hook is null)
        {
            return Problems.NotFound("inbound hook", id);
        }
        if (hook.RevokedAt is null)
        {
            hook.RevokedAt = clock.GetUtcNow();
            await db.SaveChangesAsync(ct);
        }
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<Page<InboundRequestResponse>>, ProblemHttpResult>> Requests(string id,
        [AsParameters] InboundRequestListQuery query, ReferloopDb db, CancellationToken ct)
    {
        if (!await db.InboundHooks.AnyAsync(h => h.Id == id, ct))
        {
            return Problems.NotFound("inbound hook", id);
        }
        Paging.TryDecode(query.Cursor, out var before);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var requests = db.InboundRequests.AsNoTracking().Where(r => r.HookId == id);
        if (query.Outcome is not null)
        {
            requests = requests.Where(r => r.Outcome == query.Outcome);
        }
        if (before is not null)
        {
            requests = requests.Where(r => string.Compare(r.Id, before) < 0);
        }
        var rows = await requests.OrderByDescending(r => r.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, r => r.Id, InboundRequestResponse.From));
    }
}
