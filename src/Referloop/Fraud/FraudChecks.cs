using Referloop.Campaigns;

namespace Referloop.Fraud;

/// <summary>What is known about the friend when a referral is judged.</summary>
/// <param name="BrowserConversion">The conversion being judged was reported from a browser with the publishable key.</param>
public sealed record FriendSignals(string Email, string? Ip, string? ClickId, string? UserAgent, string? CouponCode,
    bool BrowserConversion = false);

/// <summary>One check that tripped: which (<c>selfReferral</c>, <c>sameIp</c>, …), what the policy does, and why.</summary>
public sealed record FraudFinding(string Check, FraudAction Action, string Reason);

public sealed record FraudVerdict(IReadOnlyList<FraudFinding> Findings)
{
    public static readonly FraudVerdict Clean = new([]);
    public bool Blocked => Findings.Any(f => f.Action == FraudAction.Block);
    public bool Flagged => !Blocked && Findings.Any(f => f.Action == FraudAction.Flag);
}

/// <summary>The names a <see cref="FraudFinding"/> carries in <see cref="FraudFinding.Check"/>.</summary>
public static class FraudCheck
{
    public const string SelfReferral = "selfReferral";
    public const string SameIp = "sameIp";
    public const string DisposableEmail = "disposableEmail";
    public const string BlockedEmail = "blockedEmail";
    public const string BlockedIp = "blockedIp";
    public const string CouponCycling = "couponCycling";
    public const string Velocity = "velocity";
    public const string BrowserReported = "browserReported";
}

/// <summary>Runs a campaign's fraud policy on one advocate → friend referral.</summary>
public static class FraudChecks
{
    /// <summary>
    /// Runs every check the policy has switched on and returns each one that tripped, with the action the policy
    /// sets and a reason a reviewer can act on. The blocked lists and the velocity limit always block: an operator
    /// who lists an address or sets a limit has already decided. Decides over its arguments alone: what the
    /// database knows comes in <paramref name="facts"/> (<see cref="FraudFacts.LoadAsync"/>), and nothing is written.
    /// </summary>
    public static FraudVerdict Evaluate(FraudPolicy policy, string advocateEmail, FriendSignals friend, FraudFacts facts)
    {
        var findings = new List<FraudFinding>();

        if (friend.BrowserConversion && policy.BrowserConversions == BrowserConversions.Review)
        {
            findings.Add(new(FraudCheck.BrowserReported, FraudAction.Flag,
                "the conversion was reported from a browser with the publishable key; the campaign holds those for review"));
        }

        if (policy.SelfReferral != FraudAction.Allow)
        {
            var advocateMailbox = EmailIdentity.Normalise(advocateEmail);
            if (advocateMailbox == EmailIdentity.Normalise(friend.Email))
            {
                findings.Add(new(FraudCheck.SelfReferral, policy.SelfReferral,
                    $"friend's email normalises to the advocate's: {advocateMailbox}"));
            }
        }

        if (policy.BlockedEmails.Count > 0)
        {
            if (BlockLists.MatchEmail(policy.BlockedEmails, friend.Email) is { } friendEntry)
            {
                findings.Add(new(FraudCheck.BlockedEmail, FraudAction.Block,
                    $"friend's email {friend.Email.Trim()} matches the blocked entry '{friendEntry}'"));
            }
            if (BlockLists.MatchEmail(policy.BlockedEmails, advocateEmail) is { } advocateEntry)
            {
                findings.Add(new(FraudCheck.BlockedEmail, FraudAction.Block,
                    $"advocate's email {advocateEmail} matches the blocked entry '{advocateEntry}'"));
            }
        }

        if (policy.DisposableEmail != FraudAction.Allow
            && DisposableDomains.IsDisposable(EmailIdentity.Domain(friend.Email), out var listed))
        {
            var domain = EmailIdentity.Domain(friend.Email);
            findings.Add(new(FraudCheck.DisposableEmail, policy.DisposableEmail, domain == listed
                ? $"friend's email domain {domain} is a disposable-email provider"
                : $"friend's email domain {domain} belongs to the disposable-email provider {listed}"));
        }

        CheckIps(policy, friend, facts, findings);

        if (policy.CouponCycling != FraudAction.Allow && !string.IsNullOrWhiteSpace(friend.CouponCode))
        {
            var used = friend.CouponCode.Trim();
            // Shops often upper-case codes at checkout, so the comparison ignores case.
            if (facts.AdvocateCouponCodes.FirstOrDefault(code => string.Equals(code, used, StringComparison.OrdinalIgnoreCase)) is { } own)
            {
                findings.Add(new(FraudCheck.CouponCycling, policy.CouponCycling,
                    $"friend used the coupon {own}, which was issued to the advocate"));
            }
        }

        if (policy.MaxReferralsPerHour is { } limit && facts.AdvocateFriendsLastHour >= limit)
        {
            findings.Add(new(FraudCheck.Velocity, FraudAction.Block,
                $"the advocate already brought {facts.AdvocateFriendsLastHour} referrals in the last hour (limit {limit} an hour)"));
        }

        return findings.Count == 0 ? FraudVerdict.Clean : new FraudVerdict(findings);
    }

    private static void CheckIps(FraudPolicy policy, FriendSignals friend, FraudFacts facts, List<FraudFinding> findings)
    {
        var checkSame = policy.SameIp != FraudAction.Allow;
        var checkBlocked = policy.BlockedIps.Count > 0;
        if (!checkSame && !checkBlocked)
        {
            return;
        }

        var friendIp = BlockLists.CanonicalIp(friend.Ip);
        var clickIp = BlockLists.CanonicalIp(facts.ClickIp);
        var advocateIps = facts.AdvocateIps;

        if (checkBlocked)
        {
            if (BlockLists.MatchIp(policy.BlockedIps, friendIp) is { } entry)
            {
                findings.Add(new(FraudCheck.BlockedIp, FraudAction.Block, $"friend's IP {friendIp} matches the blocked entry '{entry}'"));
            }
            if (clickIp != friendIp && BlockLists.MatchIp(policy.BlockedIps, clickIp) is { } clickEntry)
            {
                findings.Add(new(FraudCheck.BlockedIp, FraudAction.Block,
                    $"friend's click {friend.ClickId} came from {clickIp}, which matches the blocked entry '{clickEntry}'"));
            }
            foreach (var ip in advocateIps)
            {
                if (BlockLists.MatchIp(policy.BlockedIps, ip) is { } advocateEntry)
                {
                    findings.Add(new(FraudCheck.BlockedIp, FraudAction.Block,
                        $"advocate used the IP {ip}, which matches the blocked entry '{advocateEntry}'"));
                    break;
                }
            }
        }

        if (checkSame && advocateIps.Count > 0)
        {
            var known = advocateIps.Select(BlockLists.CanonicalIp).ToHashSet(StringComparer.Ordinal);
            if (friendIp is not null && known.Contains(friendIp))
            {
                findings.Add(new(FraudCheck.SameIp, policy.SameIp, $"friend's IP {friendIp} is one the advocate used"));
            }
            else if (clickIp is not null && known.Contains(clickIp))
            {
                findings.Add(new(FraudCheck.SameIp, policy.SameIp,
                    $"friend's click {friend.ClickId} came from {clickIp}, an IP the advocate used"));
            }
        }
    }
}
