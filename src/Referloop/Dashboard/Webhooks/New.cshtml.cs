using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

public sealed class NewEndpointModel(ReferloopDb db, NetworkGuard guard, TimeProvider clock) : EndpointFormModel(db)
{
    public override bool IsNew => true;

    public async Task OnGetAsync(CancellationToken ct) => await LoadCampaignsAsync(ct);

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        await LoadCampaignsAsync(ct);
        if (ToInput() is not { } input)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        var result = (await WebhooksApi.Create(input, Db, guard, clock, ct)).Result;
        if (Refused(result) || result is not Created<WebhookEndpointResponse> { Value: { } created })
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        TempData["Secret"] = created.Secret;
        TempData["Notice"] = "Endpoint created. Copy its signing secret now: it is shown only this once.";
        return Redirect($"/admin/webhooks/{created.Id}");
    }
}
