using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;

namespace Referloop.Dashboard.Referrals;

/// <summary>One referral: who, why it is in its status, the fraud checks' findings, its history and rewards; qualify, approve or void it.</summary>
public sealed class ReferralDetailsModel(ReferloopDb db, ReferralEngine engine) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string Id { get; set; } = "";

    public Referral Referral { get; private set; } = null!;
    public string CampaignName { get; private set; } = "";
    public Participant Advocate { get; private set; } = null!;
    public Participant Friend { get; private set; } = null!;
    public IReadOnlyList<ReferralStatusChange> History { get; private set; } = [];
    public IReadOnlyList<Reward> Rewards { get; private set; } = [];
    public Dictionary<string, string> RewardOwners { get; private set; } = [];
    public string? ActionError { get; private set; }
    public string? VoidReason { get; private set; }

    /// <summary>The rule of <see cref="ReferralCore.Qualify"/>: a flagged referral that already converted has nothing left to qualify.</summary>
    public bool CanQualify => Referral.Status == ReferralStatus.Pending
        || (Referral.Status == ReferralStatus.Flagged && Referral.QualifiedAt is null);
    public bool CanApprove => Referral.Status is not (ReferralStatus.Approved or ReferralStatus.Voided);
    public bool CanVoid => Referral.Status != ReferralStatus.Voided;

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    public async Task<IActionResult> OnPostApproveAsync(string? reason, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        new ReferralReason(reason).Validate(errors);
        if (!errors.IsEmpty)
        {
            return await ShowErrorAsync(Describe(errors), ct);
        }
        var result = await engine.ApproveAsync(Id, ReferralsApi.Reason(reason, ReferralsApi.ApprovedByAdmin), ct);
        return await AnswerAsync(result, "Referral approved. Its rewards are payable once the referral.approved webhook is acknowledged, or now if nothing listens for it.", ct);
    }

    public async Task<IActionResult> OnPostQualifyAsync(string? reason, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        new ReferralReason(reason).Validate(errors);
        if (!errors.IsEmpty)
        {
            return await ShowErrorAsync(Describe(errors), ct);
        }
        var result = await engine.QualifyAsync(Id, ReferralsApi.Reason(reason, ReferralsApi.QualifiedByAdmin), ct);
        return await AnswerAsync(result, "Referral qualified: the friend's conversion is recorded and the campaign's rules decide what happens next.", ct);
    }

    public async Task<IActionResult> OnPostVoidAsync(string? reason, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        new VoidReferral(reason).Validate(errors);
        if (!errors.IsEmpty)
        {
            VoidReason = reason;
            return await ShowErrorAsync(Describe(errors), ct);
        }
        var result = await engine.VoidAsync(Id, reason!.Trim(), ct);
        return await AnswerAsync(result, "Referral voided. Rewards not yet issued are blocked.", ct);
    }

    private async Task<IActionResult> AnswerAsync(ReferralCommandResult result, string notice, CancellationToken ct)
    {
        if (result.NotFound)
        {
            return NotFound();
        }
        if (result.Conflict is not null)
        {
            db.ChangeTracker.Clear();
            return await ShowErrorAsync(result.Conflict, ct, StatusCodes.Status409Conflict);
        }
        TempData["Notice"] = notice;
        return Redirect($"/admin/referrals/{Id}");
    }

    private async Task<IActionResult> ShowErrorAsync(string error, CancellationToken ct, int status = StatusCodes.Status400BadRequest)
    {
        if (!await LoadAsync(ct))
        {
            return NotFound();
        }
        ActionError = error;
        Response.StatusCode = status;
        return Page();
    }

    private static string Describe(ValidationErrors errors) =>
        string.Join(" ", errors.ToDictionary().Select(e => $"The {e.Key} {string.Join(" ", e.Value)}"));

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        var referral = await db.Referrals.AsNoTracking().Include(r => r.Advocate).Include(r => r.Friend)
            .FirstOrDefaultAsync(r => r.Id == Id, ct);
        if (referral is null)
        {
            return false;
        }
        Referral = referral;
        Advocate = referral.Advocate!;
        Friend = referral.Friend!;
        CampaignName = await db.Campaigns.Where(c => c.Id == referral.CampaignId).Select(c => c.Name).FirstAsync(ct);
        History = referral.History;
        Rewards = await db.Rewards.AsNoTracking().Where(r => r.ReferralId == Id).OrderBy(r => r.Id).ToListAsync(ct);
        RewardOwners = new() { [Advocate.Id] = Advocate.Email, [Friend.Id] = Friend.Email };
        return true;
    }
}
