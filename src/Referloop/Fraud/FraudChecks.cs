using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Fraud;

/// <summary>What is known about the friend when a referral is judged.</summary>
public sealed record FriendSignals(string Email, string? Ip, string? ClickId, string? UserAgent, string? CouponCode);

/// <summary>One check that tripped: which (<c>selfReferral</c>, <c>sameIp</c>, …), what the policy does, and why.</summary>
public sealed record FraudFinding(string Check, FraudAction Action, string Reason);

public sealed record FraudVerdict(IReadOnlyList<FraudFinding> Findings)
{
    public static readonly FraudVerdict Clean = new([]);
    public bool Blocked => Findings.Any(f => f.Action == FraudAction.Block);
    public bool Flagged => !Blocked && Findings.Any(f => f.Action == FraudAction.Flag);
}

/// <summary>Runs a campaign's fraud policy on one advocate → friend referral.</summary>
public static class FraudChecks
{
    // CONTRACT STUB — replaced by the fraud implementation; the engine calls exactly this signature.
    public static Task<FraudVerdict> EvaluateAsync(ReferloopDb db, Campaign campaign, Participant advocate,
        FriendSignals friend, TimeProvider clock, CancellationToken ct) => Task.FromResult(FraudVerdict.Clean);
}
