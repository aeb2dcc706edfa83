using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.HostedPages;

public sealed record PortalReferral(string FriendFirstName, string Status, DateTimeOffset CreatedAt);

public sealed record PortalReward(string Incentive, string? CouponCode, string Status, DateTimeOffset CreatedAt);

public sealed record ShareTarget(string Name, string Url);

public sealed record PortalProgress(string Text, int Count, int Target);

public sealed record LeaderboardRow(int Rank, string Name, int Count, bool IsYou);

/// <summary>
/// The advocate portal, <c>/p/{token}</c>: the share link to copy, share and scan, the advocate's referrals (friend's
/// first name and status only), rewards with coupon codes, progress to the next milestone and the goal, and the
/// campaign's leaderboard when it has one.
/// </summary>
public sealed class PortalModel(ReferloopDb db, PublicUrls urls) : HostedPageModel
{
    public const int LeaderboardSize = 10;

    public Participant Advocate { get; private set; } = null!;
    public string Token { get; private set; } = "";
    public string ShareUrl { get; private set; } = "";
    public IReadOnlyList<ShareTarget> ShareTargets { get; private set; } = [];
    public IReadOnlyList<PortalReferral> Referrals { get; private set; } = [];
    public IReadOnlyList<PortalReward> Rewards { get; private set; } = [];
    public IReadOnlyList<PortalProgress> Progress { get; private set; } = [];
    public IReadOnlyList<LeaderboardRow>? Leaderboard { get; private set; }
    public string? FirstName => Names.FromFullName(Advocate.Name).First;

    public async Task<IActionResult> OnGetAsync(string token, CancellationToken ct)
    {
        var advocate = await PortalTokens.FindAsync(db, token, ct);
        Use(advocate?.Campaign);
        if (advocate is null)
        {
            return NotFoundPage();
        }
        Advocate = advocate;
        Token = token;
        Title = Text["PortalTitle"];
        ShareUrl = urls.ShareUrl(advocate.Code);
        ShareTargets = Share(ShareUrl, Campaign!.Name, Text);

        Referrals = (await db.Referrals.AsNoTracking()
                .Where(r => r.AdvocateId == advocate.Id)
                .OrderByDescending(r => r.CreatedAt).Take(200)
                .Select(r => new { r.Status, r.CreatedAt, r.Friend!.Name })
                .ToListAsync(ct))
            .Select(r => new PortalReferral(Names.FromFullName(r.Name).First ?? Text["AnonymousFriend"], r.Status, r.CreatedAt))
            .ToList();
        Rewards = (await db.Rewards.AsNoTracking()
                .Where(r => r.ParticipantId == advocate.Id)
                .OrderByDescending(r => r.CreatedAt).Take(200)
                .ToListAsync(ct))
            .Select(r => new PortalReward(Describe(r.Incentive, Text), r.CouponCode, r.Status, r.CreatedAt))
            .ToList();

        var counters = await db.AdvocateCounters.AsNoTracking()
            .Where(c => c.ParticipantId == advocate.Id)
            .ToDictionaryAsync(c => c.Name, c => c.Count, ct);
        Progress = ProgressOf(Campaign, counters, Text);

        if (Settings.Leaderboard)
        {
            Leaderboard = await LeaderboardAsync(ct);
        }
        return Page();
    }

    private async Task<IReadOnlyList<LeaderboardRow>> LeaderboardAsync(CancellationToken ct)
    {
        var top = await db.Referrals.AsNoTracking()
            .Where(r => r.CampaignId == Campaign!.Id && r.Status != ReferralStatus.Voided)
            .GroupBy(r => r.AdvocateId)
            .Select(g => new { AdvocateId = g.Key, Count = g.Count() })
            .OrderByDescending(g => g.Count).ThenBy(g => g.AdvocateId)
            .Take(LeaderboardSize)
            .ToListAsync(ct);
        var ids = top.Select(t => t.AdvocateId).ToList();
        var names = await db.Participants.AsNoTracking().Where(p => ids.Contains(p.Id))
            .ToDictionaryAsync(p => p.Id, p => p.Name, ct);
        return top.Select((t, i) => new LeaderboardRow(i + 1, PublicName(names.GetValueOrDefault(t.AdvocateId), Text), t.Count,
            t.AdvocateId == Advocate.Id)).ToList();
    }

    /// <summary>First name and the initial of the last: "Ann L.".</summary>
    public static string PublicName(string? name, PageText text)
    {
        var (first, last) = Names.FromFullName(name);
        return first is null ? text["AnonymousAdvocate"] : Names.Initial(last) is { } initial ? $"{first} {initial}" : first;
    }

    /// <summary>Plain share URLs: no third-party script runs on the portal.</summary>
    public static IReadOnlyList<ShareTarget> Share(string shareUrl, string campaignName, PageText text)
    {
        var message = Uri.EscapeDataString(text.Format("ShareMessage", campaignName, shareUrl));
        var url = Uri.EscapeDataString(shareUrl);
        return
        [
            new(text["ShareEmail"], $"mailto:?subject={Uri.EscapeDataString(text.Format("ShareSubject", campaignName))}&body={message}"),
            new(text["ShareSms"], $"sms:?&body={message}"),
            new("WhatsApp", $"https://wa.me/?text={message}"),
            new("X", $"https://x.com/intent/post?text={Uri.EscapeDataString(text.Format("ShareMessage", campaignName, ""))}&url={url}"),
            new("Facebook", $"https://www.facebook.com/sharer/sharer.php?u={url}"),
            new("LinkedIn", $"https://www.linkedin.com/sharing/share-offsite/?url={url}"),
        ];
    }

    public static string Describe(Incentive incentive, PageText text) => incentive.Type switch
    {
        IncentiveType.Rebate => text.Money(incentive.Amount ?? 0, incentive.Currency),
        IncentiveType.DiscountCoupon => text["Coupon"],
        _ => incentive.Description ?? "",
    };

    /// <summary>
    /// The advocate's way to the next tier of each milestone rule they earn from, and to the campaign's goal
    /// (successful referrals), from the counters the reward rules read.
    /// </summary>
    public static IReadOnlyList<PortalProgress> ProgressOf(Campaign campaign, IReadOnlyDictionary<string, int> counters, PageText text)
    {
        var progress = new List<PortalProgress>();
        foreach (var rule in campaign.Rewards.Where(r => r.Kind == RewardKind.Milestone && r.Recipient != RewardRecipient.Friend))
        {
            var counter = rule.Trigger switch
            {
                RewardTrigger.Invited => AdvocateCounters.Referrals,
                RewardTrigger.Converted => AdvocateCounters.Conversions,
                _ => AdvocateCounters.CustomEvent(rule.Event ?? ""),
            };
            var count = counters.GetValueOrDefault(counter);
            var next = rule.Tiers?.Where(t => t.Referrals > count).OrderBy(t => t.Referrals).FirstOrDefault();
            if (next is { Referrals: { } target, Incentive: { } incentive })
            {
                progress.Add(new(text.Format("MilestoneProgress", text.Number(count), text.Number(target), Describe(incentive, text)), count, target));
            }
            else if (rule.Tiers is { Count: > 0 } tiers)
            {
                var last = tiers.Max(t => t.Referrals ?? 0);
                progress.Add(new(text["MilestonesDone"], last, last));
            }
        }
        var goal = campaign.GoalConversions
            ?? campaign.Rewards.FirstOrDefault(r => r.Kind == RewardKind.Goal && r.Recipient != RewardRecipient.Friend)?.Goal;
        if (goal is { } goalTarget)
        {
            var conversions = counters.GetValueOrDefault(AdvocateCounters.Conversions);
            progress.Add(conversions >= goalTarget
                ? new(text.Format("GoalReached", text.Number(conversions)), goalTarget, goalTarget)
                : new(text.Format("GoalProgress", text.Number(conversions), text.Number(goalTarget)), conversions, goalTarget));
        }
        return progress;
    }
}
