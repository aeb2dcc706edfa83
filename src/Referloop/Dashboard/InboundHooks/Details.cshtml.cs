using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Http;
using Referloop.InboundHooks;
using Referloop.Storage;

namespace Referloop.Dashboard.InboundHooks;

/// <summary>One inbound hook: its URL (right after creation only), how to call it, and the requests it received.</summary>
public sealed class HookDetailsModel(ReferloopDb db, TimeProvider clock, PublicUrls urls) : PageModel
{
    public const int LogSize = 50;

    public static readonly string[] Outcomes =
    [
        InboundOutcomeStatus.Processed, InboundOutcomeStatus.Duplicate, InboundOutcomeStatus.Rejected,
        InboundOutcomeStatus.Failed, InboundOutcomeStatus.Received,
    ];

    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? Outcome { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? After { get; set; }

    public InboundHook Hook { get; private set; } = null!;
    public IReadOnlyList<InboundRequest> Requests { get; private set; } = [];
    public string? OlderCursor { get; private set; }
    public string? NewerCursor { get; private set; }
    public int Total { get; private set; }

    /// <summary>The full URL, right after creation only: the token is stored hashed.</summary>
    public string? HookUrl { get; private set; }
    public string? SigningSecret { get; private set; }
    public string UrlPrefix => $"{urls.Base}/hooks/{Hook.TokenPrefix}…";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (Outcome is not null && !Outcomes.Contains(Outcome))
        {
            Outcome = null;
        }
        var hook = await db.InboundHooks.AsNoTracking().Include(h => h.Campaign).FirstOrDefaultAsync(h => h.Id == Id, ct);
        if (hook is null)
        {
            return NotFound();
        }
        Hook = hook;
        HookUrl = TempData["HookUrl"] as string;
        SigningSecret = TempData["HookSecret"] as string;
        var requests = db.InboundRequests.AsNoTracking().Where(r => r.HookId == Id);
        Total = await requests.CountAsync(ct);
        if (Outcome is not null)
        {
            requests = requests.Where(r => r.Outcome == Outcome);
        }
        var page = await Keyset.NewestFirstAsync(requests, r => r.Id, r => r, r => r.Id, Before, After, LogSize, ct);
        (Requests, OlderCursor, NewerCursor) = (page.Rows, page.Older, page.Newer);
        return Page();
    }

    /// <summary>The request log's address with its outcome filter kept; a cursor pages it.</summary>
    public string LogLink(string? before = null, string? after = null)
    {
        var query = new List<string>();
        if (Outcome is not null)
        {
            query.Add("outcome=" + Uri.EscapeDataString(Outcome));
        }
        if (before is not null)
        {
            query.Add("before=" + Uri.EscapeDataString(before));
        }
        if (after is not null)
        {
            query.Add("after=" + Uri.EscapeDataString(after));
        }
        return $"/admin/inbound-hooks/{Id}" + (query.Count == 0 ? "" : "?" + string.Join("&", query)) + "#requests";
    }

    public async Task<IActionResult> OnPostRevokeAsync(CancellationToken ct)
    {
        if ((await InboundHooksApi.Revoke(Id, db, clock, ct)).Result is not NoContent)
        {
            return NotFound();
        }
        TempData["Notice"] = "Hook revoked: its URL answers 401 from now on.";
        return Redirect($"/admin/inbound-hooks/{Id}");
    }

    /// <summary>A request to try the hook with, in the shape its kind reads.</summary>
    public string Example(string url) => Hook.Kind switch
    {
        InboundHookKind.Conversion => $"curl -X POST {url}",
        InboundHookKind.Qualify => $"curl -X POST {url} -H \"Content-Type: application/json\" -d '{{\"code\": \"k3J9xQ2m\", \"email\": \"bob@example.net\"}}'",
        InboundHookKind.Track => $"curl -X POST {url} -H \"Content-Type: application/json\" -d '{{\"type\": \"purchase\", \"email\": \"bob@example.net\", \"referralCode\": \"k3J9xQ2m\", \"orderId\": \"ORD-1001\", \"purchaseValue\": 120.5, \"currency\": \"USD\"}}'",
        _ => $"curl -X POST {url} -H \"Content-Type: application/json\" -d '{{\"email\": \"john.smith@example.com\", \"city\": \"Miami\", \"countryCode\": \"US\", \"productName\": \"Sneakers\", \"total\": 55, \"currency\": \"USD\"}}'",
    };

    public static IEnumerable<KeyValuePair<string, string>> Headers(InboundRequest request)
    {
        try
        {
            using var document = JsonDocument.Parse(request.Headers);
            return document.RootElement.EnumerateObject()
                .Select(p => new KeyValuePair<string, string>(p.Name, p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText()))
                .ToList();
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
