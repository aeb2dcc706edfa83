using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Shared;
using Referloop.Storage;

namespace Referloop.Dashboard.Analytics;

public sealed class AnalyticsModel(ReferloopDb db, CampaignAnalytics analytics) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Campaign { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Period { get; set; }

    public IReadOnlyList<(string Id, string Name)> Campaigns { get; private set; } = [];
    public AnalyticsPeriod SelectedPeriod { get; private set; } = AnalyticsPeriod.All[1];
    public AnalyticsReport Report { get; private set; } = null!;
    public string CampaignName => Campaigns.FirstOrDefault(c => c.Id == Campaign).Name ?? "All campaigns";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        Campaigns = await CampaignChoices.NewestFirstAsync(db, ct);
        if (string.IsNullOrEmpty(Campaign))
        {
            Campaign = null;
        }
        else if (Campaigns.All(c => c.Id != Campaign))
        {
            return NotFound();
        }
        SelectedPeriod = AnalyticsPeriod.Parse(Period);
        Report = await analytics.ReportAsync(Campaign, SelectedPeriod, ct);
        return Page();
    }

    public static string Percent(double? rate) => rate is { } r ? (r * 100).ToString("0.#", CultureInfo.InvariantCulture) + " %" : "—";

    public static string Count(int n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public BarChart FunnelChart
    {
        get
        {
            var f = Report.Funnel;
            return new BarChart("funnel", $"Referral funnel, {SelectedPeriod.Label.ToLowerInvariant()}",
                $"{Count(f.Clicks)} share-link clicks, {Count(f.SignUps)} referred sign-ups, {Count(f.Conversions)} conversions.",
                "People",
                [
                    new Bar("Clicks", f.Clicks, Count(f.Clicks)),
                    new Bar("Sign-ups", f.SignUps, Count(f.SignUps)),
                    new Bar("Conversions", f.Conversions, Count(f.Conversions)),
                ]);
        }
    }

    public BarChart AdvocatesChart => new("advocates", "Top advocates by conversions",
        Report.TopAdvocates.Count == 0 ? "No advocate has referred anyone in this period."
            : string.Join("; ", Report.TopAdvocates.Select(a => $"{a.Email}: {Count(a.Conversions)} conversions")) + ".",
        "Conversions",
        Report.TopAdvocates.Select(a => new Bar(Shorten(a.Name ?? a.Email), a.Conversions, Count(a.Conversions))).ToList());

    private static string Shorten(string text) => text.Length <= 18 ? text : text[..17] + "…";
}
