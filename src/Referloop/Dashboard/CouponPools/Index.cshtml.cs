using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Rewards;
using Referloop.Storage;

namespace Referloop.Dashboard.CouponPools;

public sealed record PoolRow(string Name, string? CreateCouponUrl, int Available, int Allocated, bool UsedByRules, DateTimeOffset UpdatedAt)
{
    /// <summary>Few enough codes left that the merchant should upload more (or rely on the create-coupon URL).</summary>
    public bool Low => Available < LowStock && CreateCouponUrl is null;

    public const int LowStock = 10;
}

/// <summary>A campaign's coupon pools with their stock, and an upload form that takes codes pasted or as a CSV file.</summary>
[RequestFormLimits(MultipartBodyLengthLimit = MaxUploadBytes, ValueLengthLimit = (int)MaxUploadBytes)]
public sealed class CouponPoolsModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    /// <summary>Pasted codes are one form value: room for the API's 100,000 codes of up to 100 characters.</summary>
    public const long MaxUploadBytes = 12 * 1024 * 1024;

    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public Campaign? Selected { get; private set; }
    public IReadOnlyList<PoolRow> Pools { get; private set; } = [];
    public Dictionary<string, string[]> Errors { get; private set; } = [];
    public string? Pool { get; private set; }
    public string? Codes { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    public async Task<IActionResult> OnPostUploadAsync(string? pool, string? codes, IFormFile? file, CancellationToken ct)
    {
        if (!await LoadAsync(ct) || Selected is null)
        {
            return NotFound();
        }
        Pool = pool?.Trim() ?? "";
        Codes = codes;
        var route = new PoolRoute(Selected.Id, Pool);
        var errors = new ValidationErrors();
        route.Validate(errors);
        Errors = errors.ToDictionary();
        if (Errors.Count > 0)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var body = codes ?? "";
        if (file is { Length: > 0 })
        {
            using var reader = new StreamReader(file.OpenReadStream());
            body = await reader.ReadToEndAsync(ct);
        }
        // A file ending in .json, or pasted JSON, is read the way the API reads application/json.
        var json = file?.FileName.EndsWith(".json", StringComparison.OrdinalIgnoreCase) == true || body.TrimStart().StartsWith('{');
        var (result, uploadErrors, problem) = await CouponPoolsApi.UploadAsync(db, clock, route, body, json, ct);
        if (problem is not null)
        {
            return NotFound();
        }
        if (uploadErrors is not null)
        {
            Errors = uploadErrors;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        TempData["Notice"] = $"Pool “{Pool}”: {result!.Added:N0} codes added, {result.Duplicates:N0} already there; {result.Available:N0} available.";
        return Redirect($"/admin/coupon-pools?campaign={Uri.EscapeDataString(Selected.Id)}");
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var campaigns = await db.Campaigns.AsNoTracking().OrderByDescending(c => c.Id).Take(500).ToListAsync(ct);
        Campaigns = campaigns.Select(c => (c.Id, c.Name)).ToList();
        if (string.IsNullOrEmpty(Campaign))
        {
            Selected = campaigns.FirstOrDefault();
            Campaign = Selected?.Id;
        }
        else
        {
            Selected = campaigns.FirstOrDefault(c => c.Id == Campaign);
            if (Selected is null)
            {
                return false;
            }
        }
        if (Selected is null)
        {
            return true;
        }
        var pools = await db.CouponPools.AsNoTracking().Where(p => p.CampaignId == Selected.Id).OrderBy(p => p.Name).ToListAsync(ct);
        var stock = await CouponPoolsApi.StockAsync(db, pools.Select(p => p.Id).ToList(), ct);
        var used = RuleMentions(Selected);
        var rows = pools.Select(p =>
        {
            var (available, allocated) = stock.GetValueOrDefault(p.Id);
            return new PoolRow(p.Name, p.CreateCouponUrl, available, allocated, used.Contains(p.Name), p.UpdatedAt);
        }).ToList();
        // A pool that reward rules name but nobody has filled yet is the most urgent one to show.
        rows.AddRange(used.Where(name => pools.All(p => p.Name != name))
            .Select(name => new PoolRow(name, null, 0, 0, true, Selected.UpdatedAt)));
        Pools = rows;
        return true;
    }

    private static HashSet<string> RuleMentions(Campaign campaign) =>
        campaign.Rewards.SelectMany(r => new[] { r.Incentive }.Concat((r.Tiers ?? []).Select(t => t.Incentive)))
            .Where(i => i?.Type == IncentiveType.DiscountCoupon && i.Pool is not null)
            .Select(i => i!.Pool!)
            .ToHashSet(StringComparer.Ordinal);

    public string? Error(string field) => Errors.TryGetValue(field, out var messages) ? string.Join(" ", messages) : null;
}
