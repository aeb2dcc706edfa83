using Referloop.Campaigns;

namespace Referloop.HostedPages;

/// <summary>
/// What the advocate and the friend get, told from the campaign's reward rules, for the pages of a campaign whose
/// settings give no offer text of their own.
/// </summary>
public static class PageOffers
{
    /// <summary>The friend's incentives: "$10.50 when you sign up", "10,50 € bei deiner ersten Bestellung".</summary>
    public static IReadOnlyList<string> Friend(Campaign campaign, PageText text) =>
        campaign.Rewards
            .Where(r => r.Recipient is RewardRecipient.Friend or RewardRecipient.Both && r.Kind == RewardKind.Standard && r.Incentive is not null)
            .Select(r => r.Trigger switch
            {
                RewardTrigger.Invited => text.Format("FriendOfferOnSignup", PortalModel.Describe(r.Incentive!, text)),
                RewardTrigger.Converted => text.Format("FriendOfferOnOrder", PortalModel.Describe(r.Incentive!, text)),
                _ => PortalModel.Describe(r.Incentive!, text),
            })
            .Distinct().ToList();

    /// <summary>The advocate's incentives: per friend who signs up or orders, and at each milestone and the goal.</summary>
    public static IReadOnlyList<string> Advocate(Campaign campaign, PageText text)
    {
        var offers = new List<string>();
        foreach (var rule in campaign.Rewards.Where(r => r.Recipient is RewardRecipient.Advocate or RewardRecipient.Both))
        {
            switch (rule.Kind)
            {
                case RewardKind.Standard when rule.Incentive is { } incentive:
                    offers.Add(rule.Trigger switch
                    {
                        RewardTrigger.Invited => text.Format("AdvocateOfferPerSignup", PortalModel.Describe(incentive, text)),
                        RewardTrigger.Converted => text.Format("AdvocateOfferPerOrder", PortalModel.Describe(incentive, text)),
                        _ => PortalModel.Describe(incentive, text),
                    });
                    break;
                case RewardKind.Milestone:
                    offers.AddRange((rule.Tiers ?? []).Where(t => t is { Referrals: not null, Incentive: not null }).OrderBy(t => t.Referrals)
                        .Select(t => text.Format("AdvocateOfferAtReferrals", PortalModel.Describe(t.Incentive!, text), text.Number(t.Referrals!.Value))));
                    break;
                case RewardKind.Goal when rule.Incentive is { } incentive && (rule.Goal ?? campaign.GoalConversions) is { } goal:
                    offers.Add(text.Format("AdvocateOfferAtGoal", PortalModel.Describe(incentive, text), text.Number(goal)));
                    break;
            }
        }
        return offers.Distinct().ToList();
    }
}
