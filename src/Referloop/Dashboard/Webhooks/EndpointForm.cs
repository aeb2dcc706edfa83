using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Http;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

/// <summary>
/// The endpoint form shared by "new" and "edit". It maps onto <see cref="WebhookEndpointInput"/> and hands it to the
/// API's own handlers, so the dashboard and the API keep one set of rules and one wording of errors.
/// </summary>
public abstract class EndpointFormModel(ReferloopDb db) : PageModel
{
    protected ReferloopDb Db { get; } = db;

    [BindProperty] public string? EndpointUrl { get; set; }
    [BindProperty] public string? Description { get; set; }
    [BindProperty] public List<string> EventTypes { get; set; } = [];
    [BindProperty] public string? CampaignId { get; set; }
    [BindProperty] public string Format { get; set; } = WebhookFormat.Json;
    [BindProperty] public bool Enabled { get; set; } = true;
    [BindProperty] public int? RateLimitPerSecond { get; set; }
    [BindProperty] public bool RetryUntilAcknowledged { get; set; } = true;

    /// <summary>How messages are signed; chosen at creation only.</summary>
    [BindProperty] public string Signing { get; set; } = WebhookSigning.Hmac;

    /// <summary>Custom headers, one <c>Name: value</c> a line.</summary>
    [BindProperty] public string? Headers { get; set; }

    public Dictionary<string, string[]> Errors { get; protected set; } = [];
    public IReadOnlyList<CampaignOption> Campaigns { get; private set; } = [];

    public abstract bool IsNew { get; }

    public string? Error(string field) => Errors.TryGetValue(field, out var messages) ? string.Join(" ", messages) : null;

    /// <summary>Errors of fields that start with <paramref name="prefix"/> (eventTypes[1], headers.X-Key …).</summary>
    public string? ErrorsUnder(string prefix)
    {
        var messages = Errors.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(e => e.Key == prefix ? string.Join(" ", e.Value) : $"{e.Key}: {string.Join(" ", e.Value)}").ToList();
        return messages.Count == 0 ? null : string.Join(" ", messages);
    }

    /// <summary>
    /// The campaigns to choose from: the first 500 by name, and always the one chosen (<see cref="CampaignId"/>), or the
    /// form would post "every campaign" for an endpoint whose campaign is not among them.
    /// </summary>
    protected async Task LoadCampaignsAsync(CancellationToken ct)
    {
        var campaigns = Db.Campaigns.AsNoTracking();
        Campaigns = await campaigns.OrderBy(c => c.Name).Select(c => new CampaignOption(c.Id, c.Name, c.Status)).Take(500).ToListAsync(ct);
        if (!string.IsNullOrWhiteSpace(CampaignId) && Campaigns.All(c => c.Id != CampaignId)
            && await campaigns.Where(c => c.Id == CampaignId).Select(c => new CampaignOption(c.Id, c.Name, c.Status))
                .FirstOrDefaultAsync(ct) is { } chosen)
        {
            Campaigns = [chosen, .. Campaigns];
        }
    }

    protected void Fill(WebhookEndpoint endpoint)
    {
        EndpointUrl = endpoint.Url;
        Description = endpoint.Description;
        EventTypes = [.. endpoint.EventTypes];
        CampaignId = endpoint.CampaignId;
        Format = endpoint.Format;
        Enabled = endpoint.Enabled;
        RateLimitPerSecond = endpoint.RateLimitPerSecond;
        RetryUntilAcknowledged = endpoint.RetryUntilAcknowledged;
        Signing = endpoint.Signing;
        Headers = string.Join('\n', endpoint.Headers.Select(h => $"{h.Key}: {h.Value}"));
    }

    /// <summary>The API input this form stands for, checked by the API's own rules; null when it broke one.</summary>
    protected WebhookEndpointInput? ToInput()
    {
        var errors = new ValidationErrors();
        var headers = ParseHeaders(Headers, errors);
        var input = new WebhookEndpointInput(EndpointUrl?.Trim(), Description, EventTypes.Count == 0 ? null : EventTypes,
            string.IsNullOrWhiteSpace(CampaignId) ? null : CampaignId, Format, Enabled, RateLimitPerSecond, headers,
            IsNew ? Signing : null, RetryUntilAcknowledged);
        input.Validate(errors);
        FormBinding.AddFailures(ModelState, errors,
            (nameof(RateLimitPerSecond), "rateLimitPerSecond", "must be a whole number of requests per second."));
        if (errors.IsEmpty)
        {
            return input;
        }
        Errors = errors.ToDictionary();
        return null;
    }

    /// <summary>Shows the answer of an API handler that refused the input; true when it did.</summary>
    protected bool Refused(IResult result)
    {
        switch (result)
        {
            case ValidationProblem problem:
                Errors = problem.ProblemDetails.Errors.ToDictionary(e => e.Key, e => e.Value);
                return true;
            case ProblemHttpResult problem:
                Errors = new() { [""] = [problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "The request was refused."] };
                return true;
            default:
                return false;
        }
    }

    private static Dictionary<string, string> ParseHeaders(string? text, ValidationErrors errors)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var lines = (text ?? "").Split('\n', StringSplitOptions.TrimEntries);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                continue;
            }
            var colon = lines[i].IndexOf(':');
            if (colon <= 0)
            {
                errors.Add("headers", $"line {i + 1} must read 'Name: value'.");
                continue;
            }
            headers[lines[i][..colon].Trim()] = lines[i][(colon + 1)..].Trim();
        }
        return headers;
    }
}

public sealed record CampaignOption(string Id, string Name, string Status);
