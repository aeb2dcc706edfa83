using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Dashboard.Campaigns;

/// <summary>
/// Imports participants from a CSV file: a dry run first (the report of what would be created and every row error),
/// then a confirm step that imports the same file, all rows or none. Planning and writing are the API's own.
/// </summary>
public sealed class ImportParticipantsModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    public Campaign Campaign { get; private set; } = null!;

    /// <summary>The report of the last dry run or import, if any.</summary>
    public ParticipantImportReport? Report { get; private set; }

    /// <summary>The checked file (Base64), carried from the dry run to the confirm step.</summary>
    public string? Checked { get; private set; }

    public string? FileError { get; private set; }
    public bool Conflict { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    /// <summary>The dry run: reads and plans the uploaded file, writes nothing.</summary>
    public async Task<IActionResult> OnPostCheckAsync(IFormFile? file, CancellationToken ct)
    {
        if (!await LoadAsync(ct))
        {
            return NotFound();
        }
        if (file is null || file.Length == 0)
        {
            FileError = "Choose a CSV file.";
            return Page();
        }
        if (file.Length > ParticipantImport.MaxBytes)
        {
            FileError = $"The file is too large: an import takes at most {ParticipantImport.MaxBytes / 1024 / 1024} MiB; split it.";
            return Page();
        }
        using var buffer = new MemoryStream();
        await file.CopyToAsync(buffer, ct);
        var csv = buffer.ToArray();
        Report = (await CampaignCsv.RunImportAsync(db, Campaign, csv, dry: true, clock.GetUtcNow(), ct)).Report;
        Checked = Report.Errors.Count == 0 ? Convert.ToBase64String(csv) : null;
        return Page();
    }

    /// <summary>The confirm step: imports the checked file (planned again, so nothing changed in between is overwritten).</summary>
    public async Task<IActionResult> OnPostImportAsync(string? @checked, CancellationToken ct)
    {
        if (!await LoadAsync(ct))
        {
            return NotFound();
        }
        byte[] csv;
        try
        {
            csv = Convert.FromBase64String(@checked ?? "");
        }
        catch (FormatException)
        {
            csv = [];
        }
        if (csv.Length == 0 || csv.Length > ParticipantImport.MaxBytes)
        {
            FileError = "Check a file first.";
            return Page();
        }
        var outcome = await CampaignCsv.RunImportAsync(db, Campaign, csv, dry: false, clock.GetUtcNow(), ct);
        Report = outcome.Report;
        Conflict = outcome.Conflict;
        return Page();
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == Id, ct);
        if (campaign is null)
        {
            return false;
        }
        Campaign = campaign;
        return true;
    }
}
