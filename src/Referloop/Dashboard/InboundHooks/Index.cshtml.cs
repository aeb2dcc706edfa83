using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Webhooks;
using Referloop.Http;
using Referloop.InboundHooks;
using Referloop.Storage;

namespace Referloop.Dashboard.InboundHooks;

public sealed class InboundHooksIndexModel(ReferloopDb db, TimeProvider clock, PublicUrls urls) : PageModel
{
    [BindProperty] public string? CampaignId { get; set; }
    [BindProperty] public string Kind { get; set; } = InboundHookKind.Stream;
    [BindProperty] public string? Name { get; set; }
    [BindProperty] public bool Signed { get; set; }

    public IReadOnlyList<HookRow> Hooks { get; private set; } = [];
    public IReadOnlyList<CampaignOption> Campaigns { get; private set; } = [];
    public Dictionary<string, string[]> Errors { get; private set; } = [];

    public string? Error(string field) => Errors.TryGetValue(field, out var messages) ? string.Join(" ", messages) : null;

    public static string Describe(string kind) => kind switch
    {
        InboundHookKind.Track => "reports an event (sign-up, purchase…) as the events API takes it",
        InboundHookKind.Qualify => "qualifies a referred user by their share code",
        InboundHookKind.Conversion => "counts one conversion per POST; the body is ignored",
        _ => "adds a purchase or sign-up to the social-proof feed",
    };

    public static string Label(string kind) => kind switch
    {
        InboundHookKind.Track => "track: events",
        InboundHookKind.Qualify => "qualify: referred users",
        InboundHookKind.Conversion => "conversion: count POSTs",
        _ => "stream: social-proof feed",
    };

    /// <summary>How a hook is called in lists: its name, else its kind.</summary>
    public static string Title(string? name, string kind) => name ?? $"Unnamed {kind} hook";

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var input = new CreateInboundHook(CampaignId, Kind, Name, Signed);
        var errors = new ValidationErrors();
        input.Validate(errors);
        if (errors.IsEmpty)
        {
            var result = (await InboundHooksApi.Create(input, db, clock, urls, ct)).Result;
            if (result is Created<CreatedInboundHook> { Value: { } created })
            {
                TempData["HookUrl"] = created.Url;
                TempData["HookSecret"] = created.SigningSecret;
                TempData["Notice"] = "Hook created. Copy its URL now: it is shown only this once.";
                return Redirect($"/admin/inbound-hooks/{created.Id}");
            }
            Errors = result is ValidationProblem problem ? problem.ProblemDetails.Errors.ToDictionary(e => e.Key, e => e.Value) : [];
        }
        else
        {
            Errors = errors.ToDictionary();
        }
        Response.StatusCode = StatusCodes.Status400BadRequest;
        await LoadAsync(ct);
        return Page();
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        Campaigns = await db.Campaigns.AsNoTracking().OrderBy(c => c.Name)
            .Select(c => new CampaignOption(c.Id, c.Name, c.Status)).Take(500).ToListAsync(ct);
        Hooks = await db.InboundHooks.AsNoTracking().OrderByDescending(h => h.Id).Take(500)
            .Select(h => new HookRow(h.Id, h.Name, h.Kind, h.CampaignId, h.Campaign!.Name, h.TokenPrefix, h.SigningSecret != null,
                h.Conversions, h.LastReceivedAt, h.RevokedAt,
                db.InboundRequests.Count(r => r.HookId == h.Id)))
            .ToListAsync(ct);
    }
}

public sealed record HookRow(string Id, string? Name, string Kind, string CampaignId, string CampaignName, string TokenPrefix,
    bool Signed, long Conversions, DateTimeOffset? LastReceivedAt, DateTimeOffset? RevokedAt, int Requests);
