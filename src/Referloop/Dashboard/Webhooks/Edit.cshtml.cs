using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Referloop.Outbound;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Dashboard.Webhooks;

public sealed class EditEndpointModel(ReferloopDb db, NetworkGuard guard, DeliveryEngine engine, TimeProvider clock) : EndpointFormModel(db)
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    public override bool IsNew => false;

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var endpoint = await Db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == Id, ct);
        if (endpoint is null)
        {
            return NotFound();
        }
        Fill(endpoint);
        await LoadCampaignsAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        await LoadCampaignsAsync(ct);
        if (ToInput() is not { } input)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        var result = (await WebhooksApi.Update(Id, input, Db, guard, engine, clock, ct)).Result;
        if (result is ProblemHttpResult { StatusCode: StatusCodes.Status404NotFound })
        {
            return NotFound();
        }
        if (Refused(result))
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        TempData["Notice"] = "Endpoint saved.";
        return Redirect($"/admin/webhooks/{Id}");
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken ct)
    {
        if ((await WebhooksApi.Delete(Id, Db, engine, ct)).Result is not NoContent)
        {
            return NotFound();
        }
        TempData["Notice"] = "The endpoint and its delivery log were deleted.";
        return Redirect("/admin/webhooks");
    }
}
