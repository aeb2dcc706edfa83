using Referloop.Campaigns;
using Referloop.Email;
using Referloop.HostedPages;
using Referloop.Http;

namespace Referloop.Dashboard.Email;

/// <summary>The e-mail kinds as the dashboard names them, and the sample mail a template preview shows.</summary>
public static class EmailPreview
{
    public static string Label(string kind) => kind switch
    {
        EmailKind.Welcome => "Welcome",
        EmailKind.Reward => "Reward issued",
        EmailKind.Milestone => "Milestone reached",
        EmailKind.MagicLink => "Magic link",
        _ => kind,
    };

    public static string SentWhen(string kind) => kind switch
    {
        EmailKind.Welcome => "An advocate joins: their share link and portal.",
        EmailKind.Reward => "A reward is issued, with its coupon code when it has one.",
        EmailKind.Milestone => "A reward of a milestone or goal rule is issued.",
        EmailKind.MagicLink => "An advocate asks for their portal link on the join page. Sent even after an unsubscribe.",
        _ => "",
    };

    /// <summary>The campaign's language, as the sender chooses it (no browser to ask).</summary>
    public static PageText TextOf(Campaign campaign) => new(PageLanguage.Choose(campaign.Page?.Language, null));

    /// <summary>
    /// The mail of <paramref name="kind"/> for a made-up advocate of <paramref name="campaign"/>, through the renderer
    /// the sender uses. The reward comes from the campaign's own rules when it has one of the kind.
    /// </summary>
    public static RenderedEmail Render(Campaign campaign, string kind, EmailTemplate? template, PublicUrls urls)
    {
        var text = TextOf(campaign);
        var values = new Dictionary<string, string>
        {
            ["firstName"] = EmailTemplates.FirstName(SampleName, text),
            ["name"] = SampleName,
            ["campaignName"] = campaign.Name,
            ["shareUrl"] = urls.ShareUrl("SAMPLE01"),
            ["portalUrl"] = urls.PortalUrl("pt_sample"),
        };
        if (kind is EmailKind.Reward or EmailKind.Milestone)
        {
            var (incentive, milestone) = SampleReward(campaign, kind);
            values["couponCode"] = incentive.Type == IncentiveType.DiscountCoupon ? "SAMPLE-10" : "";
            values["rewardDescription"] = PortalModel.Describe(incentive, text);
            values["milestone"] = milestone?.ToString(text.Culture) ?? "";
        }
        if (EmailKind.CanUnsubscribe(kind))
        {
            values["unsubscribeUrl"] = $"{urls.Base}/unsubscribe/sample";
        }
        return EmailTemplates.Render(kind, template, text, values);
    }

    public const string SampleName = "Alex Sample";

    private static (Incentive Incentive, int? Milestone) SampleReward(Campaign campaign, string kind)
    {
        if (kind == EmailKind.Milestone)
        {
            var tier = campaign.Rewards.Where(r => r.Kind == RewardKind.Milestone)
                .SelectMany(r => r.Tiers ?? []).FirstOrDefault(t => t.Incentive is not null);
            if (tier is not null)
            {
                return (tier.Incentive!, tier.Referrals);
            }
            var goal = campaign.Rewards.FirstOrDefault(r => r.Kind == RewardKind.Goal && r.Incentive is not null);
            return (goal?.Incentive ?? SampleIncentive, goal?.Goal ?? campaign.GoalConversions ?? 5);
        }
        var standard = campaign.Rewards.FirstOrDefault(r => r.Kind == RewardKind.Standard && r.Incentive is not null);
        return (standard?.Incentive ?? SampleIncentive, null);
    }

    private static readonly Incentive SampleIncentive = new() { Type = IncentiveType.Rebate, Amount = 10, Currency = "USD" };
}
