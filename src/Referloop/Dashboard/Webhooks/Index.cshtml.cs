using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

public sealed class WebhooksIndexModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    public IReadOnlyList<EndpointRow> Endpoints { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct)
    {
        var since = clock.GetUtcNow().AddDays(-1);
        Endpoints = await db.WebhookEndpoints.AsNoTracking().OrderByDescending(e => e.Id).Take(500)
            .Select(e => new EndpointRow(e.Id, e.Url, e.Description, e.EventTypes, e.CampaignId,
                db.Campaigns.Where(c => c.Id == e.CampaignId).Select(c => c.Name).FirstOrDefault(), e.Format, e.Enabled,
                e.FailingSince != null,
                db.WebhookDeliveries.Count(d => d.EndpointId == e.Id && d.Status == DeliveryStatus.Failed && d.CreatedAt >= since),
                db.WebhookDeliveries.Count(d => d.EndpointId == e.Id && d.Status == DeliveryStatus.Pending),
                e.CreatedAt))
            .ToListAsync(ct);
    }
}

public sealed record EndpointRow(string Id, string Url, string? Description, List<string> EventTypes, string? CampaignId,
    string? CampaignName, string Format, bool Enabled, bool Failing, int FailedLastDay, int Pending, DateTimeOffset CreatedAt)
{
    public string State => !Enabled ? "disabled" : Failing ? "failing" : "enabled";
}
