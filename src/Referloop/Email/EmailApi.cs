using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Email;

public sealed record EmailSendListQuery(string? CampaignId, string? ParticipantId, [property: Values(typeof(EmailKind))] string? Kind,
    [property: Values(typeof(EmailStatus))] string? Status, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Kind is not null)
        {
            errors.OneOf("kind", Kind, EmailKind.All);
        }
        if (Status is not null)
        {
            errors.OneOf("status", Status, EmailStatus.All);
        }
        errors.MaxLength("campaignId", CampaignId, 40);
        errors.MaxLength("participantId", ParticipantId, 40);
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

/// <summary>One recorded e-mail and what became of it.</summary>
public sealed record EmailSendResponse(
    string Id,
    string CampaignId,
    string ParticipantId,
    [property: Values(typeof(EmailKind))] string Kind,
    string To,
    string? Subject,
    [property: Values(typeof(EmailStatus))] string Status,
    int Attempts,
    string? LastError,
    DateTimeOffset? NextAttemptAt,
    DateTimeOffset? SentAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public static EmailSendResponse From(EmailSend s) => new(s.Id, s.CampaignId, s.ParticipantId, s.Kind, s.To, s.Subject, s.Status,
        s.Attempts, s.LastError, s.Status == EmailStatus.Pending ? s.NextAttemptAt : null, s.SentAt, s.CreatedAt, s.UpdatedAt);
}

public static class EmailApi
{
    public static RouteGroupBuilder MapEmail(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/email-sends")
            .WithTags("E-mail")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();
        group.MapGet("/", List).WithName("ListEmailSends")
            .WithSummary("List the e-mails sent or due, filtered by campaign, participant, kind or status")
            .WithDescription("Each send with its outcome: pending (with its next attempt), sent, failed (with the last error) or skipped (why).");
        return group;
    }

    private static async Task<Ok<Page<EmailSendResponse>>> List([AsParameters] EmailSendListQuery query, ReferloopDb db, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var sends = db.Set<EmailSend>().AsNoTracking();
        if (query.CampaignId is not null)
        {
            sends = sends.Where(s => s.CampaignId == query.CampaignId);
        }
        if (query.ParticipantId is not null)
        {
            sends = sends.Where(s => s.ParticipantId == query.ParticipantId);
        }
        if (query.Kind is not null)
        {
            sends = sends.Where(s => s.Kind == query.Kind);
        }
        if (query.Status is not null)
        {
            sends = sends.Where(s => s.Status == query.Status);
        }
        if (after is not null)
        {
            sends = sends.Where(s => string.Compare(s.Id, after) > 0);
        }
        var rows = await sends.OrderBy(s => s.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, s => s.Id, EmailSendResponse.From));
    }
}
