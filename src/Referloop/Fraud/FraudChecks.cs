using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;

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
    /// Runs every check the campaign has switched on and returns each one that tripped, with the action the policy
    /// sets and a reason a reviewer can act on. The blocked lists and the velocity limit always block: an operator
    /// who lists an address or sets a limit has already decided. Nothing is written.
    /// </summary>
    public static async Task<FraudVerdict> EvaluateAsync(ReferloopDb db, Campaign campaign, Participant advocate,
        FriendSignals friend, TimeProvider clock, CancellationToken ct)
    {
        var policy = campaign.Fraud;
        var findings = new List<FraudFinding>();

        if (friend.BrowserConversion && policy.BrowserConversions == BrowserConversions.Review)
        {
            findings.Add(new(FraudCheck.BrowserReported, FraudAction.Flag,
                "the conversion was reported from a browser with the publishable key; the campaign holds those for review"));
        }

        if (policy.SelfReferral != FraudAction.Allow)
        {
            var advocateMailbox = EmailIdentity.Normalise(advocate.Email);
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
            if (BlockLists.MatchEmail(policy.BlockedEmails, advocate.Email) is { } advocateEntry)
            {
                findings.Add(new(FraudCheck.BlockedEmail, FraudAction.Block,
                    $"advocate's email {advocate.Email} matches the blocked entry '{advocateEntry}'"));
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

        await CheckIpsAsync(db, policy, advocate, friend, findings, ct);

        if (policy.CouponCycling != FraudAction.Allow && !string.IsNullOrWhiteSpace(friend.CouponCode))
        {
            var used = friend.CouponCode.Trim();
            var advocateCodes = await db.Coupons.AsNoTracking()
                .Where(c => c.AllocatedToParticipantId == advocate.Id)
                .Select(c => c.Code)
                .ToListAsync(ct);
            // Shops often upper-case codes at checkout, so the comparison ignores case.
            if (advocateCodes.FirstOrDefault(code => string.Equals(code, used, StringComparison.OrdinalIgnoreCase)) is { } own)
            {
                findings.Add(new(FraudCheck.CouponCycling, policy.CouponCycling,
                    $"friend used the coupon {own}, which was issued to the advocate"));
            }
        }

        if (policy.MaxReferralsPerHour is { } limit)
        {
            // Referrals belong to the engine; every referral makes its friend a participant with ReferredById set,
            // so friends created in the last hour count them. The friend being judged is left out, so the count is
            // the same whether the engine calls this before or after saving the friend.
            var since = clock.GetUtcNow().AddHours(-1);
            var friendEmail = Participant.NormaliseEmail(friend.Email);
            var recent = await db.Participants.AsNoTracking()
                .CountAsync(p => p.ReferredById == advocate.Id && p.CreatedAt > since && p.Email != friendEmail, ct);
            if (recent >= limit)
            {
                findings.Add(new(FraudCheck.Velocity, FraudAction.Block,
                    $"the advocate already brought {recent} referrals in the last hour (limit {limit} an hour)"));
            }
        }

        return findings.Count == 0 ? FraudVerdict.Clean : new FraudVerdict(findings);
    }

    private static async Task CheckIpsAsync(ReferloopDb db, FraudPolicy policy, Participant advocate, FriendSignals friend,
        List<FraudFinding> findings, CancellationToken ct)
    {
        var checkSame = policy.SameIp != FraudAction.Allow;
        var checkBlocked = policy.BlockedIps.Count > 0;
        if (!checkSame && !checkBlocked)
        {
            return;
        }

        var friendIp = BlockLists.CanonicalIp(friend.Ip);
        string? clickIp = null;
        if (!string.IsNullOrWhiteSpace(friend.ClickId) && friend.ClickId.Length <= 40)
        {
            var rawClickIp = await db.Clicks.AsNoTracking()
                .Where(c => c.Id == friend.ClickId)
                .Select(c => c.Ip)
                .FirstOrDefaultAsync(ct);
            clickIp = BlockLists.CanonicalIp(rawClickIp);
        }
        var advocateIps = await db.ParticipantIps.AsNoTracking()
            .Where(p => p.ParticipantId == advocate.Id)
            .OrderBy(p => p.FirstSeenAt)
            .Select(p => p.Ip)
            .ToListAsync(ct);

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
