using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.RegularExpressions;
using Referloop.Email;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.Security;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.Campaigns;

/// <summary>The body of create and update: the whole rule set of a campaign. Omitted settings take their defaults.</summary>
public sealed partial record CampaignInput : IValidatable
{
    [Required, StringLength(200)]
    public string? Name { get; init; }

    [Required, Url, StringLength(2048)]
    public string? LandingUrl { get; init; }

    [Range(1, 365)]
    public int? AttributionWindowDays { get; init; }

    [Range(0, 365)]
    public int? HoldingPeriodDays { get; init; }

    [Values(typeof(ApprovalPolicy))]
    public string? Approval { get; init; }

    public bool? AllowRewardsOnAutoApproved { get; init; }

    [Range(1, 100_000)]
    public int? GoalConversions { get; init; }

    /// <summary>
    /// What a refunded purchase does to its referral: <c>keep_if_other_purchases</c> (default) voids it only when no
    /// other purchase of the friend still counts; <c>void</c> voids it on any refund.
    /// </summary>
    [Values(typeof(RefundPolicy))]
    public string? Refunds { get; init; }

    public FraudPolicy? Fraud { get; init; }

    [MaxLength(50)]
    public List<RewardRule>? Rewards { get; init; }

    /// <summary>Omitted or with no origins: the server's <c>SocialProof:AllowedOrigins</c> apply.</summary>
    public SocialProofSettings? SocialProof { get; init; }

    /// <summary>The join page's address: <c>/join/{slug}</c>. Unique; omitted: the page is at <c>/join/{id}</c> only.</summary>
    [RegularExpression(SlugRule)]
    public string? Slug { get; init; }

    /// <summary>The hosted pages' texts and look; omitted: their defaults.</summary>
    public PageSettings? Page { get; init; }

    /// <summary>The e-mail templates (subject, text, HTML per mail); omitted: the defaults of the campaign's language.</summary>
    public EmailSettings? Email { get; init; }

    public void Validate(ValidationErrors errors)
    {
        errors.Required("name", Name);
        errors.HttpUrl("landingUrl", LandingUrl);
        errors.Range("attributionWindowDays", AttributionWindowDays, 1, 365);
        errors.Range("holdingPeriodDays", HoldingPeriodDays, 0, 365);
        if (Approval is not null)
        {
            errors.OneOf("approval", Approval, ApprovalPolicy.All);
        }
        errors.Range("goalConversions", GoalConversions, 1, 100_000);
        if (Refunds is not null)
        {
            errors.OneOf("refunds", Refunds, RefundPolicy.All);
        }
        if (Fraud is not null)
        {
            ValidateFraud(errors, Fraud);
        }
        SocialProof?.Validate(errors, "socialProof");
        if (Slug is not null && !CampaignSlugPattern().IsWholeMatch(Slug))
        {
            errors.Add("slug", "must be 1–64 lower-case letters, digits or '-', starting with a letter or digit.");
        }
        Page?.Validate(errors, "page");
        Email?.Validate(errors, "email");

        if (Rewards is { Count: > 50 })
        {
            errors.Add("rewards", "must hold at most 50 rules.");
        }
        for (var i = 0; i < (Rewards?.Count ?? 0); i++)
        {
            ValidateRule(errors, $"rewards[{i}]", Rewards![i]);
        }
        var duplicateIds = Rewards?.Where(r => r?.Id is not null).GroupBy(r => r.Id).Where(g => g.Count() > 1).Select(g => g.Key);
        foreach (var id in duplicateIds ?? [])
        {
            errors.Add("rewards", $"rule id '{id}' is used more than once.");
        }
    }

    private void ValidateRule(ValidationErrors errors, string path, RewardRule? rule)
    {
        if (rule is null)
        {
            errors.Add(path, "must be a reward rule object.");
            return;
        }
        if (rule.Id is not null && !SlugPattern().IsWholeMatch(rule.Id))
        {
            errors.Add($"{path}.id", "must be 1–64 letters, digits, '_' or '-'.");
        }
        errors.OneOf($"{path}.recipient", rule.Recipient, RewardRecipient.All);
        errors.OneOf($"{path}.trigger", rule.Trigger, RewardTrigger.All);
        if (rule.Trigger == RewardTrigger.Event)
        {
            errors.Required($"{path}.event", rule.Event, 64);
        }
        else if (rule.Event is not null)
        {
            errors.Add($"{path}.event", "is only allowed when trigger is 'event'.");
        }

        errors.OneOf($"{path}.kind", rule.Kind, RewardKind.All);
        if (rule.Kind == RewardKind.Milestone)
        {
            if (rule.Incentive is not null)
            {
                errors.Add($"{path}.incentive", "is not used by a milestone rule; give each tier its incentive.");
            }
            ValidateTiers(errors, path, rule.Tiers);
        }
        else
        {
            if (rule.Tiers is not null)
            {
                errors.Add($"{path}.tiers", "are only allowed when kind is 'milestone'.");
            }
            ValidateIncentive(errors, $"{path}.incentive", rule.Incentive);
        }

        if (rule.Kind == RewardKind.Goal)
        {
            errors.Range($"{path}.goal", rule.Goal, 1, 100_000);
            if (rule.Goal is null && GoalConversions is null)
            {
                errors.Add($"{path}.goal", "is required for a goal rule when the campaign has no goalConversions.");
            }
        }
        else if (rule.Goal is not null)
        {
            errors.Add($"{path}.goal", "is only allowed when kind is 'goal'.");
        }

        if (rule.MinPurchaseValue is < 0 or > 1_000_000_000_000m)
        {
            errors.Add($"{path}.minPurchaseValue", "must be between 0 and 1,000,000,000,000.");
        }

        if (rule.Limits is { } limits)
        {
            errors.Range($"{path}.limits.perMonth", limits.PerMonth, 1, 1_000_000);
            errors.Range($"{path}.limits.total", limits.Total, 1, 1_000_000);
            if (limits.PerMonth > limits.Total)
            {
                errors.Add($"{path}.limits.perMonth", "must not exceed limits.total.");
            }
        }
    }

    private static void ValidateTiers(ValidationErrors errors, string path, List<MilestoneTier>? tiers)
    {
        if (tiers is null || tiers.Count == 0)
        {
            errors.Add($"{path}.tiers", "are required for a milestone rule: at least one {referrals, incentive}.");
            return;
        }
        if (tiers.Count > 50)
        {
            errors.Add($"{path}.tiers", "must hold at most 50 tiers.");
        }
        int? previous = null;
        for (var i = 0; i < tiers.Count; i++)
        {
            var tierPath = $"{path}.tiers[{i}]";
            if (tiers[i] is not { } tier)
            {
                errors.Add(tierPath, "must be a tier object.");
                continue;
            }
            if (tier.Referrals is null)
            {
                errors.Add($"{tierPath}.referrals", "is required.");
            }
            errors.Range($"{tierPath}.referrals", tier.Referrals, 1, 100_000);
            if (tier.Referrals <= previous)
            {
                errors.Add($"{tierPath}.referrals", "must be greater than the previous tier's (tiers ascend).");
            }
            previous = tier.Referrals ?? previous;
            ValidateIncentive(errors, $"{tierPath}.incentive", tier.Incentive);
        }
    }

    private static void ValidateIncentive(ValidationErrors errors, string path, Incentive? incentive)
    {
        if (incentive is null)
        {
            errors.Add(path, "is required.");
            return;
        }
        errors.OneOf($"{path}.type", incentive.Type, IncentiveType.All);
        switch (incentive.Type)
        {
            case IncentiveType.Rebate:
                if (incentive.Amount is not > 0)
                {
                    errors.Add($"{path}.amount", "is required for a rebate and must be greater than 0.");
                }
                else if (incentive.Amount > 1_000_000_000 || decimal.Round(incentive.Amount.Value, 4) != incentive.Amount)
                {
                    errors.Add($"{path}.amount", "must be at most 1,000,000,000 with at most 4 decimals.");
                }
                if (incentive.Currency is null || !CurrencyPattern().IsWholeMatch(incentive.Currency))
                {
                    errors.Add($"{path}.currency", "is required for a rebate: a three-letter ISO 4217 code such as USD.");
                }
                break;
            case IncentiveType.DiscountCoupon:
                if (incentive.Pool is null || !SlugPattern().IsWholeMatch(incentive.Pool))
                {
                    errors.Add($"{path}.pool", "is required for a discount_coupon: the pool name, 1–64 letters, digits, '_' or '-'.");
                }
                break;
            case IncentiveType.Other:
                errors.Required($"{path}.description", incentive.Description, 500);
                break;
        }
        if (incentive.Type == IncentiveType.Other && (incentive.Amount is not null || incentive.Currency is not null))
        {
            errors.Add($"{path}.amount", "is not used by an 'other' incentive; describe its value in description.");
        }
    }

    private static void ValidateFraud(ValidationErrors errors, FraudPolicy fraud)
    {
        // JSON null replaces the empty lists the policy starts with.
        if (fraud.BlockedEmails is null || fraud.BlockedIps is null)
        {
            if (fraud.BlockedEmails is null)
            {
                errors.Add("fraud.blockedEmails", "must be an array (empty for none), not null.");
            }
            if (fraud.BlockedIps is null)
            {
                errors.Add("fraud.blockedIps", "must be an array (empty for none), not null.");
            }
            return;
        }
        if (fraud.BlockedEmails.Count > 10_000)
        {
            errors.Add("fraud.blockedEmails", "must hold at most 10,000 entries.");
        }
        for (var i = 0; i < fraud.BlockedEmails.Count; i++)
        {
            var entry = fraud.BlockedEmails[i];
            if (string.IsNullOrWhiteSpace(entry) || entry.Length > 254 || entry.Any(char.IsWhiteSpace))
            {
                errors.Add($"fraud.blockedEmails[{i}]", "must be an email address, '*@domain' or a domain.");
            }
        }
        if (fraud.BlockedIps.Count > 10_000)
        {
            errors.Add("fraud.blockedIps", "must hold at most 10,000 entries.");
        }
        for (var i = 0; i < fraud.BlockedIps.Count; i++)
        {
            var entry = fraud.BlockedIps[i];
            if (entry is null || !(IPAddress.TryParse(entry, out _) || IPNetwork.TryParse(entry, out _)))
            {
                errors.Add($"fraud.blockedIps[{i}]", "must be an IP address or a CIDR range such as 203.0.113.0/24.");
            }
        }
        errors.Range("fraud.maxReferralsPerHour", fraud.MaxReferralsPerHour, 1, 1_000_000);
    }

    /// <summary>A new, active campaign with this input's settings and a fresh publishable key.</summary>
    public Campaign ToNewCampaign(DateTimeOffset now)
    {
        var campaign = new Campaign
        {
            Id = Ids.New("cmp"),
            Name = "",
            LandingUrl = "",
            Approval = ApprovalPolicy.Auto,
            Fraud = new FraudPolicy(),
            Rewards = [],
            Status = CampaignStatus.Active,
            PublishableKey = Secrets.NewToken("pk"),
            CreatedAt = now,
            UpdatedAt = now,
        };
        ApplyTo(campaign);
        return campaign;
    }

    /// <summary>Applies this input to a campaign; rule ids are kept when given and assigned when not.</summary>
    public void ApplyTo(Campaign campaign)
    {
        campaign.Name = Name!.Trim();
        campaign.LandingUrl = LandingUrl!;
        campaign.AttributionWindowDays = AttributionWindowDays ?? 30;
        campaign.HoldingPeriodDays = HoldingPeriodDays ?? 0;
        campaign.Approval = Approval ?? ApprovalPolicy.Auto;
        campaign.AllowRewardsOnAutoApproved = AllowRewardsOnAutoApproved ?? true;
        campaign.GoalConversions = GoalConversions;
        campaign.Refunds = Refunds ?? RefundPolicy.KeepIfOtherPurchases;
        campaign.Fraud = Fraud ?? new FraudPolicy();
        campaign.SocialProof = SocialProof is { AllowedOrigins.Count: > 0 } settings
            ? settings with { AllowedOrigins = SocialProofSettings.Normalise(settings.AllowedOrigins) }
            : null;
        campaign.Slug = Slug;
        campaign.Page = Page?.Normalise();
        campaign.Email = Email?.Normalise();
        campaign.Rewards = (Rewards ?? []).Select(rule => rule with
        {
            Id = rule.Id ?? Ids.New("rule"),
            Incentive = Normalise(rule.Incentive),
            Tiers = rule.Tiers?.Select(tier => tier with { Incentive = Normalise(tier.Incentive) }).ToList(),
        }).ToList();
    }

    private static Incentive? Normalise(Incentive? incentive) =>
        incentive is null ? null : incentive with { Currency = incentive.Currency?.ToUpperInvariant() };

    /// <summary>A rule id or pool name.</summary>
    public const string NameRule = "^[A-Za-z0-9_-]{1,64}$";

    /// <summary>An ISO 4217 code such as USD.</summary>
    public const string Currency = "^[A-Za-z]{3}$";

    [GeneratedRegex(NameRule)]
    private static partial Regex SlugPattern();

    /// <summary>A campaign's slug, as it appears in <c>/join/{slug}</c>.</summary>
    public const string SlugRule = "^[a-z0-9][a-z0-9-]{0,63}$";

    [GeneratedRegex(SlugRule)]
    private static partial Regex CampaignSlugPattern();

    [GeneratedRegex(Currency)]
    private static partial Regex CurrencyPattern();
}
