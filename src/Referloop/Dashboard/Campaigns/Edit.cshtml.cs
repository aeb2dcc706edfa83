using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Dashboard.Shared;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.Dashboard.Campaigns;

/// <summary>
/// Create and edit a campaign. The form maps onto <see cref="CampaignInput"/>, so the dashboard and the API share
/// one set of rules and one wording of errors. Reward rules are edited as JSON in the API's own shape.
/// </summary>
public sealed class EditCampaignModel(ReferloopDb db, TimeProvider clock) : PageModel
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    [BindProperty(SupportsGet = true)]
    public string? Id { get; set; }

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? LandingUrl { get; set; }
    [BindProperty] public int? AttributionWindowDays { get; set; } = 30;
    [BindProperty] public int? HoldingPeriodDays { get; set; } = 0;
    [BindProperty] public string Approval { get; set; } = ApprovalPolicy.Auto;
    [BindProperty] public string Refunds { get; set; } = RefundPolicy.KeepIfOtherPurchases;
    [BindProperty] public bool AllowRewardsOnAutoApproved { get; set; } = true;
    [BindProperty] public int? GoalConversions { get; set; }
    [BindProperty] public FraudAction SelfReferral { get; set; } = FraudAction.Block;
    [BindProperty] public FraudAction SameIp { get; set; } = FraudAction.Allow;
    [BindProperty] public FraudAction DisposableEmail { get; set; } = FraudAction.Block;
    [BindProperty] public FraudAction CouponCycling { get; set; } = FraudAction.Block;
    [BindProperty] public string? BlockedEmails { get; set; }
    [BindProperty] public string? BlockedIps { get; set; }
    [BindProperty] public int? MaxReferralsPerHour { get; set; }
    [BindProperty] public string? RewardsJson { get; set; } = "[]";
    [BindProperty] public string? SocialProofOrigins { get; set; }
    [BindProperty] public string? Slug { get; set; }
    [BindProperty] public string PageShareLink { get; set; } = ShareLinkMode.Redirect;
    [BindProperty] public string? PageHeadline { get; set; }
    [BindProperty] public string? PageDescription { get; set; }
    [BindProperty] public string? PageAdvocateOffer { get; set; }
    [BindProperty] public string? PageFriendOffer { get; set; }
    [BindProperty] public string? PageBrandColor { get; set; }
    [BindProperty] public string? PageLogoUrl { get; set; }
    [BindProperty] public string? PageTermsUrl { get; set; }
    [BindProperty] public string? PageLanguage { get; set; }
    [BindProperty] public bool PageLeaderboard { get; set; }

    public Dictionary<string, string[]> Errors { get; private set; } = [];

    public bool IsNew => Id is null;

    public string? Error(string field) => Errors.TryGetValue(field, out var messages) ? string.Join(" ", messages) : null;

    public IEnumerable<KeyValuePair<string, string[]>> RewardErrors => Errors.Where(e => e.Key.StartsWith("rewards", StringComparison.Ordinal));

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (IsNew)
        {
            RewardsJson = JsonSerializer.Serialize(ExampleRules, Json);
            return Page();
        }
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == Id, ct);
        if (campaign is null)
        {
            return NotFound();
        }
        Name = campaign.Name;
        LandingUrl = campaign.LandingUrl;
        AttributionWindowDays = campaign.AttributionWindowDays;
        HoldingPeriodDays = campaign.HoldingPeriodDays;
        Approval = campaign.Approval;
        Refunds = campaign.Refunds;
        AllowRewardsOnAutoApproved = campaign.AllowRewardsOnAutoApproved;
        GoalConversions = campaign.GoalConversions;
        SelfReferral = campaign.Fraud.SelfReferral;
        SameIp = campaign.Fraud.SameIp;
        DisposableEmail = campaign.Fraud.DisposableEmail;
        CouponCycling = campaign.Fraud.CouponCycling;
        BlockedEmails = string.Join('\n', campaign.Fraud.BlockedEmails);
        BlockedIps = string.Join('\n', campaign.Fraud.BlockedIps);
        MaxReferralsPerHour = campaign.Fraud.MaxReferralsPerHour;
        RewardsJson = JsonSerializer.Serialize(campaign.Rewards, Json);
        SocialProofOrigins = string.Join('\n', campaign.SocialProof?.AllowedOrigins ?? []);
        Slug = campaign.Slug;
        var page = campaign.Page ?? new PageSettings();
        PageShareLink = page.ShareLink;
        PageHeadline = page.Headline;
        PageDescription = page.Description;
        PageAdvocateOffer = page.AdvocateOffer;
        PageFriendOffer = page.FriendOffer;
        PageBrandColor = page.BrandColor;
        PageLogoUrl = page.LogoUrl;
        PageTermsUrl = page.TermsUrl;
        PageLanguage = page.Language;
        PageLeaderboard = page.Leaderboard;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var errors = new ValidationErrors();
        List<RewardRule>? rules = null;
        try
        {
            rules = JsonSerializer.Deserialize<List<RewardRule>>(string.IsNullOrWhiteSpace(RewardsJson) ? "[]" : RewardsJson, Json);
        }
        catch (JsonException e)
        {
            errors.Add("rewards", $"is not a JSON array of reward rules: {e.Message.Split(" Path:")[0]}");
        }

        var input = new CampaignInput
        {
            Name = Name,
            LandingUrl = LandingUrl?.Trim(),
            AttributionWindowDays = AttributionWindowDays,
            HoldingPeriodDays = HoldingPeriodDays,
            Approval = Approval,
            Refunds = Refunds,
            AllowRewardsOnAutoApproved = AllowRewardsOnAutoApproved,
            GoalConversions = GoalConversions,
            Fraud = new FraudPolicy
            {
                SelfReferral = SelfReferral,
                SameIp = SameIp,
                DisposableEmail = DisposableEmail,
                CouponCycling = CouponCycling,
                BlockedEmails = Lines(BlockedEmails),
                BlockedIps = Lines(BlockedIps),
                MaxReferralsPerHour = MaxReferralsPerHour,
            },
            Rewards = rules ?? [],
            SocialProof = new SocialProofSettings { AllowedOrigins = Lines(SocialProofOrigins) },
            Slug = string.IsNullOrWhiteSpace(Slug) ? null : Slug.Trim(),
            Page = new PageSettings
            {
                ShareLink = PageShareLink,
                Headline = PageHeadline,
                Description = PageDescription,
                AdvocateOffer = PageAdvocateOffer,
                FriendOffer = PageFriendOffer,
                BrandColor = string.IsNullOrWhiteSpace(PageBrandColor) ? null : PageBrandColor.Trim(),
                LogoUrl = PageLogoUrl?.Trim(),
                TermsUrl = PageTermsUrl?.Trim(),
                Language = string.IsNullOrWhiteSpace(PageLanguage) ? null : PageLanguage,
                Leaderboard = PageLeaderboard,
            },
        };
        input.Validate(errors);
        FormBinding.AddFailures(ModelState, errors, BindingFailures);
        if (errors.IsEmpty && await CampaignsApi.SlugTaken(db, input.Slug, Id, ct) is not null)
        {
            errors.Add("slug", CampaignsApi.SlugTakenMessage);
        }
        if (!errors.IsEmpty)
        {
            Errors = errors.ToDictionary();
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        Campaign? campaign;
        if (IsNew)
        {
            campaign = input.ToNewCampaign(clock.GetUtcNow());
            db.Campaigns.Add(campaign);
        }
        else
        {
            campaign = await db.Campaigns.FirstOrDefaultAsync(c => c.Id == Id, ct);
            if (campaign is null)
            {
                return NotFound();
            }
            // The form has no e-mail fields: the templates, edited on their own page, stay as they are.
            (input with { Email = campaign.Email }).ApplyTo(campaign);
            campaign.UpdatedAt = clock.GetUtcNow();
        }
        if (!await CampaignsApi.TrySaveAsync(db, ct))
        {
            Errors = new Dictionary<string, string[]> { ["slug"] = [CampaignsApi.SlugTakenMessage] };
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        TempData["Notice"] = IsNew ? $"Campaign “{campaign.Name}” created." : "Campaign saved.";
        return Redirect($"/admin/campaigns/{campaign.Id}");
    }

    /// <summary>What the API says of each form field whose posted text does not read as its type.</summary>
    private static readonly (string Property, string Field, string Message)[] BindingFailures =
    [
        (nameof(AttributionWindowDays), "attributionWindowDays", "must be a whole number between 1 and 365."),
        (nameof(HoldingPeriodDays), "holdingPeriodDays", "must be a whole number between 0 and 365."),
        (nameof(GoalConversions), "goalConversions", "must be a whole number between 1 and 100000."),
        (nameof(AllowRewardsOnAutoApproved), "allowRewardsOnAutoApproved", "must be true or false."),
        (nameof(SelfReferral), "fraud.selfReferral", FraudActionRule),
        (nameof(SameIp), "fraud.sameIp", FraudActionRule),
        (nameof(DisposableEmail), "fraud.disposableEmail", FraudActionRule),
        (nameof(CouponCycling), "fraud.couponCycling", FraudActionRule),
        (nameof(MaxReferralsPerHour), "fraud.maxReferralsPerHour", "must be a whole number between 1 and 1000000."),
        (nameof(PageLeaderboard), "page.leaderboard", "must be true or false."),
    ];

    private const string FraudActionRule = "must be block, flag or allow.";

    private static List<string> Lines(string? text) =>
        (text ?? "").Split(['\n', '\r', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static readonly List<RewardRule> ExampleRules =
    [
        new()
        {
            Recipient = RewardRecipient.Advocate, Trigger = RewardTrigger.Converted, Kind = RewardKind.Standard,
            Incentive = new Incentive { Type = IncentiveType.Rebate, Amount = 10, Currency = "USD" },
            Limits = new RewardLimits { PerMonth = 5 },
        },
    ];
}
