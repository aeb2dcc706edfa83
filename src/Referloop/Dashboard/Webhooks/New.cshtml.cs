using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Referloop.Outbound;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

public sealed class NewEndpointModel(ReferloopDb db, NetworkGuard guard, WebhookKeys keys, TimeProvider clock) : EndpointFormModel(db)
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
        var result = (await WebhooksApi.Create(input, Db, guard, keys, clock, ct)).Result;
        if (Refused(result) || result is not Created<WebhookEndpointResponse> { Value: { } created })
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        if (created.Secret is { } secret)
        {
            TempData["Secret"] = secret;
            TempData["Notice"] = "Endpoint created. Copy its signing secret now: it is shown only this once.";
        }
        else
        {
            TempData["Notice"] = "Endpoint created with an Ed25519 key pair. Give your receiver the public key below; it can verify messages but never sign one.";
        }
        return Redirect($"/admin/webhooks/{created.Id}");
    }
}
