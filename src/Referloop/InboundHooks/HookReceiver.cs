using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.OpenApi;
using Referloop.Http;
using Referloop.Security;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.InboundHooks;

/// <summary>What <c>POST /hooks/{token}</c> answers once the request is processed (or was, for a duplicate).</summary>
public sealed record HookResponse(string RequestId, string Outcome, bool Duplicate, JsonNode? Result);

/// <summary>
/// <c>POST /hooks/{token}</c>: every request is stored raw first, then read by its Content-Type, processed once per
/// idempotency key, and stored again with its outcome, so nothing is lost and everything can be inspected.
/// </summary>
internal static class HookReceiver
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly string[] KeptHeaders =
    [
        "Content-Type", "Content-Length", "User-Agent", "Idempotency-Key", "webhook-id", "webhook-timestamp",
        "webhook-signature", "X-Forwarded-For", "Origin", "Referer",
    ];

    public static IEndpointRouteBuilder MapHookReceiver(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/hooks/{token}", Receive)
            .WithTags("Inbound hooks")
            .WithName("ReceiveInboundHook")
            .WithSummary("Receive a JSON or form-encoded POST on a hook URL (track, qualify, conversion or stream)")
            .WithDescription("The body is read by its Content-Type, which must match it: application/json (an object) or " +
                "application/x-www-form-urlencoded (nested keys such as products[0][name]); at most 1 MiB. " +
                "A conversion hook ignores the body and its Content-Type: any POST counts one. " +
                "Send Idempotency-Key (or webhook-id) to make retries safe; on a signed hook only the signed webhook-id counts. See docs/inbound-hooks.md for the fields of each kind.")
            // Declared here rather than with Accepts(): Accepts would let routing answer 415 itself, before the request is stored.
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                var schema = new OpenApiSchema { Type = JsonSchemaType.Object };
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = false,
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = schema },
                        ["application/x-www-form-urlencoded"] = new() { Schema = schema },
                    },
                };
                return Task.CompletedTask;
            })
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .RequireRateLimiting(PublicLimits.InboundHooks);
        return routes;
    }

    private static async Task<Results<Ok<HookResponse>, ValidationProblem, ProblemHttpResult>> Receive(string token,
        HttpContext http, ReferloopDb db, TimeProvider clock, IInboundEventSink sink, StreamEnricher enricher,
        ILoggerFactory loggers, CancellationToken ct)
    {
        var tokenHash = Secrets.Hash(token);
        var hook = token.Length is < 10 or > 200 ? null : await db.InboundHooks
            .FirstOrDefaultAsync(h => h.TokenHash == tokenHash && h.RevokedAt == null, ct);
        if (hook is null)
        {
            // Unknown and revoked tokens get the same answer, so a caller cannot probe which tokens exist.
            return TypedResults.Problem(title: "This hook URL is not valid.",
                detail: "The token in the URL is not an active inbound hook token.", statusCode: StatusCodes.Status401Unauthorized);
        }

        var now = clock.GetUtcNow();
        var (body, bytes, tooLarge) = await ReadBodyAsync(http.Request, ct);
        // On a signed hook the key is the signed webhook-id and nothing else: an unsigned Idempotency-Key would let a
        // captured request be replayed under a fresh key within the signature's 5 minutes.
        string? key = hook.SigningSecret is null ? http.Request.Headers["Idempotency-Key"].ToString() : null;
        if (string.IsNullOrWhiteSpace(key))
        {
            key = http.Request.Headers["webhook-id"];
        }
        key = string.IsNullOrWhiteSpace(key) ? null : key.Trim();
        var request = new InboundRequest
        {
            Id = Ids.New("inr"),
            HookId = hook.Id,
            CampaignId = hook.CampaignId,
            ReceivedAt = now,
            ContentType = Truncate(http.Request.ContentType, 200),
            Headers = JsonSerializer.Serialize(KeptHeaders
                .Where(name => http.Request.Headers.ContainsKey(name))
                .ToDictionary(name => name.ToLowerInvariant(), name => Truncate(http.Request.Headers[name].ToString(), 1000)), Json),
            // Kept as received, but for a NUL byte, which PostgreSQL's text refuses (the log shows U+FFFD there).
            Body = tooLarge ? null : body.Replace('\0', '\uFFFD'),
            BodyBytes = bytes,
            RemoteIp = http.Connection.RemoteIpAddress?.ToString(),
            IdempotencyKey = key is { Length: <= 200 } ? key : null,
            Outcome = InboundOutcomeStatus.Received,
        };
        db.InboundRequests.Add(request);
        hook.LastReceivedAt = now;
        await db.SaveChangesAsync(ct);

        if (tooLarge)
        {
            return await Reject(db, request, StatusCodes.Status413PayloadTooLarge, "The body is too large.",
                $"The body must be at most {InboundBody.MaxBytes / 1024 / 1024} MiB ({InboundBody.MaxBytes} bytes); this one has {bytes} or more.", ct);
        }
        if (key is { Length: > 200 })
        {
            return await Reject(db, request, StatusCodes.Status400BadRequest, "The idempotency key is too long.",
                "The Idempotency-Key (or webhook-id) header must be at most 200 characters.", ct);
        }
        if (hook.SigningSecret is not null && HookSignature.Problem(hook.SigningSecret, http.Request.Headers, body, now) is { } signatureProblem)
        {
            return await Reject(db, request, StatusCodes.Status401Unauthorized, "The request signature is not valid.", signatureProblem, ct);
        }

        // A conversion hook counts requests and ignores their body, so a bare POST counts whatever it carries
        // (seeds/001); the other kinds read the body, and only by the Content-Type it was sent with.
        var (payload, bodyError) = hook.Kind == InboundHookKind.Conversion
            ? (new JsonObject(), null)
            : InboundBody.Parse(http.Request.ContentType, body);
        if (bodyError is not null)
        {
            return await Reject(db, request, bodyError.Status, bodyError.Title, bodyError.Detail, ct);
        }

        if (key is not null)
        {
            var earlier = await db.InboundRequests.AsNoTracking()
                .Where(r => r.HookId == hook.Id && r.ProcessedKey == key)
                .Select(r => new { r.Id, r.Result })
                .FirstOrDefaultAsync(ct);
            if (earlier is not null)
            {
                return await Duplicate(db, request, earlier.Id, earlier.Result, ct);
            }
        }

        try
        {
            var outcome = hook.Kind switch
            {
                InboundHookKind.Conversion => await CountConversion(db, hook, request, key, now, ct),
                InboundHookKind.Stream => await AddStreamItem(db, enricher, hook, request, payload!, key, now, ct),
                // The key goes with the event too: a repeat whose first try was recorded but not logged (the sender
                // hung up) is the same event.
                InboundHookKind.Track => await sink.TrackAsync(hook.CampaignId, payload!, EventKey(hook, key), ct),
                InboundHookKind.Qualify => await Qualify(sink, hook, payload!, ct),
                _ => InboundOutcome.Refused(StatusCodes.Status500InternalServerError, $"Unknown hook kind '{hook.Kind}'."),
            };
            if (request.Outcome == InboundOutcomeStatus.Received)
            {
                // track, qualify and refusals: the outcome is recorded here, after the fact, even if the sender left.
                await Record(db, request, outcome, key, now, CancellationToken.None);
            }
            return Answer(request, outcome);
        }
        catch (DbUpdateException) when (key is not null)
        {
            // Another delivery with the same key was processed first, between our check and our write.
            db.ChangeTracker.Clear();
            var earlier = await db.InboundRequests.AsNoTracking()
                .Where(r => r.HookId == hook.Id && r.ProcessedKey == key)
                .Select(r => new { r.Id, r.Result })
                .FirstOrDefaultAsync(CancellationToken.None);
            if (earlier is null)
            {
                // Not the key: the write failed for another reason, recorded as a failure below.
                return await Failed(new InvalidOperationException("The database refused the write."));
            }
            db.InboundRequests.Attach(request);
            return await Duplicate(db, request, earlier.Id, earlier.Result, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return await Failed(e);
        }

        async Task<Results<Ok<HookResponse>, ValidationProblem, ProblemHttpResult>> Failed(Exception e)
        {
            loggers.CreateLogger("Referloop.InboundHooks").LogError(e, "Processing inbound request {RequestId} of hook {HookId} failed.", request.Id, hook.Id);
            db.ChangeTracker.Clear();
            await db.InboundRequests.Where(r => r.Id == request.Id).ExecuteUpdateAsync(set => set
                .SetProperty(r => r.Outcome, InboundOutcomeStatus.Failed)
                .SetProperty(r => r.Reason, Truncate($"Processing failed on the server ({e.GetType().Name}: {e.Message}); the request is kept.", 2000)), CancellationToken.None);
            return TypedResults.Problem(title: "The request could not be processed.",
                detail: $"It is stored as {request.Id} and can be inspected by the hook's owner.",
                statusCode: StatusCodes.Status500InternalServerError);
        }
    }

    private static async Task<InboundOutcome> CountConversion(ReferloopDb db, InboundHook hook, InboundRequest request,
        string? key, DateTimeOffset now, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.InboundHooks.Where(h => h.Id == hook.Id).ExecuteUpdateAsync(set => set.SetProperty(h => h.Conversions, h => h.Conversions + 1), ct);
        var conversions = await db.InboundHooks.Where(h => h.Id == hook.Id).Select(h => h.Conversions).FirstAsync(ct);
        var outcome = InboundOutcome.Processed(new JsonObject { ["conversions"] = conversions });
        Mark(request, outcome, key, now);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return outcome;
    }

    private static async Task<InboundOutcome> AddStreamItem(ReferloopDb db, StreamEnricher enricher, InboundHook hook,
        InboundRequest request, JsonObject payload, string? key, DateTimeOffset now, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        var stream = StreamPayload.Read(payload, errors, now);
        if (stream is null)
        {
            return InboundOutcome.Invalid(errors.ToDictionary());
        }
        var item = await enricher.EnrichAsync(stream, hook.CampaignId, hook.Id, request.Id, now, ct);
        db.SocialProofItems.Add(item);
        var result = JsonSerializer.SerializeToNode(new
        {
            item = SocialProofEntry.From(item, now),
            warnings = stream.Warnings,
        }, Json);
        var outcome = InboundOutcome.Processed(result);
        Mark(request, outcome, key, now);
        await db.SaveChangesAsync(ct);
        return outcome;
    }

    private static readonly string[] CodeFields = ["code", "referralCode", "referral_code", "uniqueCode", "unique_code", "ref"];

    private static async Task<InboundOutcome> Qualify(IInboundEventSink sink, InboundHook hook, JsonObject payload, CancellationToken ct)
    {
        var code = CodeFields
            .Select(field => payload.FirstOrDefault(p => string.Equals(p.Key, field, StringComparison.OrdinalIgnoreCase)).Value)
            .OfType<JsonValue>()
            .Select(value => value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>().Trim() : value.ToJsonString())
            .FirstOrDefault(value => value.Length > 0);
        if (code is null || code.Length > 64)
        {
            return InboundOutcome.Invalid(new Dictionary<string, string[]>
            {
                ["code"] = [code is null ? "is required: the referred user's unique code (also accepted as referralCode)." : "must be at most 64 characters."],
            });
        }
        return await sink.QualifyAsync(hook.CampaignId, code, payload, ct);
    }

    private static void Mark(InboundRequest request, InboundOutcome outcome, string? key, DateTimeOffset now)
    {
        request.Outcome = outcome.Succeeded ? InboundOutcomeStatus.Processed
            : outcome.Status >= 500 && outcome.Status != StatusCodes.Status501NotImplemented ? InboundOutcomeStatus.Failed
            : InboundOutcomeStatus.Rejected;
        request.Reason = Truncate(outcome.Reason, 2000);
        request.Result = outcome.Result?.ToJsonString(Json);
        request.ProcessedAt = now;
        if (outcome.Succeeded)
        {
            request.ProcessedKey = key;
        }
    }

    /// <summary>The event's idempotency key for a hook's request key: the hook's id and the key, within the column's 200 characters.</summary>
    private static string? EventKey(InboundHook hook, string? key) =>
        key is null ? null
        : $"{hook.Id}:{key}" is { Length: <= 200 } whole ? whole
        : $"{hook.Id}:sha256:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))}";

    private static async Task Record(ReferloopDb db, InboundRequest request, InboundOutcome outcome, string? key,
        DateTimeOffset now, CancellationToken ct)
    {
        Mark(request, outcome, key, now);
        await db.SaveChangesAsync(ct);
    }

    private static Results<Ok<HookResponse>, ValidationProblem, ProblemHttpResult> Answer(InboundRequest request, InboundOutcome outcome)
    {
        if (outcome.Succeeded)
        {
            return TypedResults.Ok(new HookResponse(request.Id, request.Outcome, false, outcome.Result));
        }
        if (outcome.Errors is not null)
        {
            return TypedResults.ValidationProblem(outcome.Errors, title: "The payload is not valid.",
                detail: "See 'errors' for each field and the rule it broke. The request is kept as " + request.Id + ".");
        }
        return TypedResults.Problem(title: "The request was not processed.", detail: outcome.Reason, statusCode: outcome.Status,
            extensions: new Dictionary<string, object?> { ["requestId"] = request.Id });
    }

    private static async Task<Results<Ok<HookResponse>, ValidationProblem, ProblemHttpResult>> Reject(ReferloopDb db,
        InboundRequest request, int status, string title, string detail, CancellationToken ct)
    {
        request.Outcome = InboundOutcomeStatus.Rejected;
        request.Reason = Truncate($"{title} {detail}", 2000);
        await db.SaveChangesAsync(ct);
        return TypedResults.Problem(title: title, detail: detail, statusCode: status,
            extensions: new Dictionary<string, object?> { ["requestId"] = request.Id });
    }

    private static async Task<Results<Ok<HookResponse>, ValidationProblem, ProblemHttpResult>> Duplicate(ReferloopDb db,
        InboundRequest request, string earlierId, string? earlierResult, CancellationToken ct)
    {
        request.Outcome = InboundOutcomeStatus.Duplicate;
        request.Reason = $"Already processed as {earlierId} (same idempotency key); not processed again.";
        request.Result = earlierResult;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new HookResponse(request.Id, request.Outcome, true,
            earlierResult is null ? null : JsonNode.Parse(earlierResult)));
    }

    /// <summary>Reads at most one byte past the limit, so an oversized body is detected without being buffered.</summary>
    private static async Task<(string Body, int Bytes, bool TooLarge)> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > InboundBody.MaxBytes)
        {
            return ("", (int)Math.Min(request.ContentLength.Value, int.MaxValue), true);
        }
        var buffer = new byte[Math.Min(request.ContentLength ?? 16 * 1024, InboundBody.MaxBytes) + 1];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > InboundBody.MaxBytes)
                {
                    return ("", length, true);
                }
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, InboundBody.MaxBytes + 1));
            }
            var read = await request.Body.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0)
            {
                break;
            }
            length += read;
        }
        return (Encoding.UTF8.GetString(buffer, 0, length), length, false);
    }

    private static string? Truncate(string? value, int max) =>
        value is null || value.Length <= max ? value : value[..max];
}
