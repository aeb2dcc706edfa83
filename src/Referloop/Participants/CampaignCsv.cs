using System.Globalization;
using CsvHelper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Participants;

/// <summary>
/// A campaign's participants, referrals and rewards as CSV downloads, and participants imported from CSV. Every text
/// cell that a spreadsheet would run as a formula (starting with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, tab or CR)
/// is written with a leading <c>'</c>, so opening an export never runs what a participant typed as their name.
/// </summary>
public static class CampaignCsv
{
    public const string ContentType = "text/csv; charset=utf-8";

    private static readonly CsvWriterOptions Options = CsvWriterOptions.Default with { Injection = CsvInjection.Escape };

    public static readonly string[] ParticipantColumns =
        ["id", "email", "name", "code", "role", "referredBy", "customValue", "shareUrl", "riskLevel", "createdAt"];

    public static readonly string[] ReferralColumns =
    [
        "id", "status", "reason", "advocateEmail", "advocateCode", "friendEmail", "friendName", "attributedBy", "eventType",
        "orderId", "purchaseValue", "currency", "riskScore", "fraudDecision", "createdAt", "qualifiedAt", "approvedAt", "voidedAt",
    ];

    public static readonly string[] RewardColumns =
    [
        "id", "status", "reason", "recipient", "participantEmail", "referralId", "ruleId", "trigger", "kind", "milestone",
        "incentiveType", "amount", "currency", "couponCode", "description", "createdAt", "issuedAt", "paidAt",
    ];

    internal static RouteGroupBuilder MapCampaignCsv(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/campaigns/{campaignId}")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapPost("/participants/import", Import).WithTags("Participants").WithName("ImportParticipants")
            .WithSummary("Import participants from CSV (email, name, code, role, referredBy, customValue): all rows or none; ?dryRun=true only reports")
            .WithDescription("Send the file as the body with 'Content-Type: text/csv'. Columns: email (required), name, code (an " +
                "existing share code, kept), role ('advocate', the default, or 'friend'), referredBy (the code of the advocate who " +
                "referred the row, in the file or the campaign; a pending referral is created), customValue. A row whose email is " +
                "already in the campaign is left as it is. With dryRun=true nothing is written and the answer is the report (200). " +
                "Without it, a file with any row error is refused with 422 problem details listing every error (row = line in " +
                "the file, the header being line 1; column; rule) and nothing is written; else every row is written in one " +
                $"transaction. At most {ParticipantImport.MaxBytes / 1024 / 1024} MiB (413) and {ParticipantImport.MaxRows:N0} rows (422). " +
                "No participant.joined webhooks are sent for imported participants.")
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Description = "CSV with a header row.",
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["text/csv"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                    },
                };
                return Task.CompletedTask;
            });
        group.MapGet("/participants/export.csv", ExportParticipants).WithTags("Participants").WithName("ExportParticipantsCsv")
            .WithSummary("Download the campaign's participants as CSV (columns as the import reads them, plus id, shareUrl, riskLevel, createdAt)")
            .Produces<string>(StatusCodes.Status200OK, "text/csv");
        group.MapGet("/referrals/export.csv", ExportReferrals).WithTags("Referrals").WithName("ExportReferralsCsv")
            .WithSummary("Download the campaign's referrals as CSV")
            .Produces<string>(StatusCodes.Status200OK, "text/csv");
        group.MapGet("/rewards/export.csv", ExportRewards).WithTags("Rewards").WithName("ExportRewardsCsv")
            .WithSummary("Download the campaign's rewards as CSV")
            .Produces<string>(StatusCodes.Status200OK, "text/csv");
        return group;
    }

    // ---------------------------------------------------------------- import

    private static async Task<Results<Ok<ParticipantImportReport>, ProblemHttpResult>> Import(string campaignId, bool? dryRun,
        HttpRequest request, ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == campaignId, ct);
        if (campaign is null)
        {
            return Problems.NotFound("campaign", campaignId);
        }
        var mediaType = MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) ? parsed.MediaType.Value?.ToLowerInvariant() : null;
        if (mediaType is not ("text/csv" or "text/plain"))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "The file must be CSV.",
                detail: "Send the CSV file as the body with 'Content-Type: text/csv'.");
        }
        var body = await ReadAtMostAsync(request, ParticipantImport.MaxBytes, ct);
        if (body is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "The file is too large.",
                detail: $"An import takes at most {ParticipantImport.MaxBytes / 1024 / 1024} MiB ({ParticipantImport.MaxBytes} bytes); split the file.");
        }

        var dry = dryRun == true;
        var outcome = await RunImportAsync(db, campaign, body, dry, clock.GetUtcNow(), ct);
        if (outcome.Conflict)
        {
            return Problems.Conflict("An email or code of the file was taken while it was imported; nothing was imported. Run the import again.");
        }
        return outcome.Report.Errors.Count > 0 ? Refused(outcome.Report, dry) : TypedResults.Ok(outcome.Report);
    }

    /// <summary>What <see cref="RunImportAsync"/> did: its report, and whether a concurrent write took an email or code (nothing written).</summary>
    public sealed record ImportOutcome(ParticipantImportReport Report, bool Conflict);

    /// <summary>
    /// Reads, plans and (unless <paramref name="dry"/>) writes an import of <paramref name="csv"/> into <paramref name="campaign"/>,
    /// in one transaction: every row, or none. Used by the API and the dashboard.
    /// </summary>
    public static async Task<ImportOutcome> RunImportAsync(ReferloopDb db, Campaign campaign, byte[] csv, bool dry, DateTimeOffset now,
        CancellationToken ct)
    {
        var (rows, fileErrors) = ParticipantImport.Read(csv);
        if (fileErrors.Count > 0)
        {
            return new(new ParticipantImportReport(dry, false, rows.Count, 0, 0, 0, fileErrors), false);
        }
        var campaignId = campaign.Id;
        var (emails, codes) = ParticipantImport.Keys(rows);
        var byEmail = await db.Participants.AsNoTracking()
            .Where(p => p.CampaignId == campaignId && emails.Contains(p.Email)).ToDictionaryAsync(p => p.Email, ct);
        var byCode = await db.Participants.AsNoTracking().Where(p => codes.Contains(p.Code)).ToDictionaryAsync(p => p.Code, ct);
        var (plan, errors) = ParticipantImport.Plan(new ImportFacts(campaign, now, byEmail, byCode), rows);
        if (plan is null)
        {
            return new(new ParticipantImportReport(dry, false, rows.Count, 0, 0, 0, errors), false);
        }
        var report = new ParticipantImportReport(dry, !dry, rows.Count, plan.Participants.Count, plan.Existing, plan.Referrals.Count, []);
        if (dry)
        {
            return new(report, false);
        }

        // One transaction: every row, or (on any failure) none.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        try
        {
            await BulkRows.For(db, plan.Participants).InsertAsync("participants", ct);
            await BulkRows.For(db, plan.Referrals).InsertAsync("referrals", ct);
            await transaction.CommitAsync(ct);
        }
        catch (Exception e) when (e is DbUpdateException or System.Data.Common.DbException)
        {
            return new(report with { Imported = false }, true);
        }
        return new(report, false);
    }

    /// <summary>A dry run reports its errors (200); an import with errors is refused (422), with the same report.</summary>
    private static Results<Ok<ParticipantImportReport>, ProblemHttpResult> Refused(ParticipantImportReport report, bool dry) =>
        dry
            ? TypedResults.Ok(report)
            : TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "The file has rows that are not valid.",
                detail: $"{report.Errors.Count} error(s); nothing was imported. Each names its row (the line in the file), column and rule.",
                extensions: new Dictionary<string, object?> { ["report"] = report });

    private static async Task<byte[]?> ReadAtMostAsync(HttpRequest request, int most, CancellationToken ct)
    {
        if (request.ContentLength > most)
        {
            return null;
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > most)
            {
                return null;
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    // ---------------------------------------------------------------- export

    private static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> ExportParticipants(string campaignId, ReferloopDb db,
        PublicUrls urls, CancellationToken ct) =>
        await db.Campaigns.AnyAsync(c => c.Id == campaignId, ct)
            ? Download($"participants-{campaignId}.csv", ParticipantColumns, ParticipantRows(db, urls, campaignId), ct)
            : Problems.NotFound("campaign", campaignId);

    private static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> ExportReferrals(string campaignId, ReferloopDb db,
        CancellationToken ct) =>
        await db.Campaigns.AnyAsync(c => c.Id == campaignId, ct)
            ? Download($"referrals-{campaignId}.csv", ReferralColumns, ReferralRows(db, campaignId), ct)
            : Problems.NotFound("campaign", campaignId);

    private static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> ExportRewards(string campaignId, ReferloopDb db,
        CancellationToken ct) =>
        await db.Campaigns.AnyAsync(c => c.Id == campaignId, ct)
            ? Download($"rewards-{campaignId}.csv", RewardColumns, RewardRows(db, campaignId), ct)
            : Problems.NotFound("campaign", campaignId);

    /// <summary>Streams a header and the rows as CSV, read from the database as they are written.</summary>
    public static PushStreamHttpResult Download(string fileName, string[] header, IAsyncEnumerable<string?[]> rows, CancellationToken ct) =>
        TypedResults.Stream(async body => await WriteAsync(body, header, rows, ct), ContentType, fileName);

    public static async Task WriteAsync(Stream body, string[] header, IAsyncEnumerable<string?[]> rows, CancellationToken ct)
    {
        await using var csv = CsvWriter.Create(body, Options, leaveOpen: true);
        await csv.WriteRecordAsync(header, ct);
        await foreach (var row in rows.WithCancellation(ct))
        {
            await csv.WriteRecordAsync(row!, ct);
        }
        await csv.FlushAsync(ct);
    }

    public static async IAsyncEnumerable<string?[]> ParticipantRows(ReferloopDb db, PublicUrls urls, string campaignId)
    {
        var rows = from p in db.Participants.AsNoTracking()
                   where p.CampaignId == campaignId
                   join a in db.Participants on p.ReferredById equals a.Id into referrers
                   from a in referrers.DefaultIfEmpty()
                   orderby p.Id
                   select new { p.Id, p.Email, p.Name, p.Code, p.IsReferrer, ReferredBy = a == null ? null : a.Code, p.CustomValue, p.RiskLevel, p.CreatedAt };
        await foreach (var p in rows.AsAsyncEnumerable())
        {
            yield return [p.Id, p.Email, p.Name, p.Code, p.IsReferrer ? "advocate" : "friend", p.ReferredBy, p.CustomValue,
                urls.ShareUrl(p.Code), p.RiskLevel, Instant(p.CreatedAt)];
        }
    }

    public static async IAsyncEnumerable<string?[]> ReferralRows(ReferloopDb db, string campaignId)
    {
        var rows = from r in db.Referrals.AsNoTracking()
                   where r.CampaignId == campaignId
                   join a in db.Participants on r.AdvocateId equals a.Id
                   join f in db.Participants on r.FriendId equals f.Id
                   orderby r.Id
                   select new { Referral = r, AdvocateEmail = a.Email, AdvocateCode = a.Code, FriendEmail = f.Email, FriendName = f.Name };
        await foreach (var row in rows.AsAsyncEnumerable())
        {
            var r = row.Referral;
            yield return [r.Id, r.Status, r.Reason, row.AdvocateEmail, row.AdvocateCode, row.FriendEmail, row.FriendName, r.AttributedBy,
                r.EventType, r.OrderId, Number(r.PurchaseValue), r.Currency, r.RiskScore.ToString(CultureInfo.InvariantCulture), r.FraudDecision,
                Instant(r.CreatedAt), Instant(r.QualifiedAt), Instant(r.ApprovedAt), Instant(r.VoidedAt)];
        }
    }

    public static async IAsyncEnumerable<string?[]> RewardRows(ReferloopDb db, string campaignId)
    {
        var rows = from w in db.Rewards.AsNoTracking()
                   where w.CampaignId == campaignId
                   join p in db.Participants on w.ParticipantId equals p.Id
                   orderby w.Id
                   select new { Reward = w, p.Email };
        await foreach (var row in rows.AsAsyncEnumerable())
        {
            var w = row.Reward;
            yield return [w.Id, w.Status, w.Reason, w.Recipient, row.Email, w.ReferralId, w.RuleId, w.Trigger, w.Kind,
                w.Milestone?.ToString(CultureInfo.InvariantCulture), w.Incentive.Type, Number(w.Incentive.Amount), w.Incentive.Currency,
                w.CouponCode, w.Incentive.Description, Instant(w.CreatedAt), Instant(w.IssuedAt), Instant(w.PaidAt)];
        }
    }

    private static string? Instant(DateTimeOffset? at) => at?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string? Number(decimal? value) => value?.ToString(CultureInfo.InvariantCulture);
}
