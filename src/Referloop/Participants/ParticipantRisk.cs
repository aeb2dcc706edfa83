using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Participants;

public static class RiskLevel
{
    public const string Low = "low";
    public const string Medium = "medium";
    public const string High = "high";
    public static readonly string[] All = [Low, Medium, High];
}

/// <summary>The <c>data</c> of <c>participant.risk_changed</c>.</summary>
public sealed record ParticipantRiskChangedData(
    CampaignRef Campaign,
    RiskParticipantRef Participant,
    string OldLevel,
    string NewLevel,
    IReadOnlyList<string> Reasons,
    RiskReferralRef? Referral,
    DateTimeOffset ChangedAt);

public sealed record RiskParticipantRef(string Id, string Email, string? Name, string Code, string? CustomValue);

/// <summary>The referral whose fraud decision changed the level.</summary>
public sealed record RiskReferralRef(string Id, string Status, int RiskScore, string? FraudDecision);

/// <summary>A participant's fraud risk as the API shows it.</summary>
public sealed record ParticipantRiskResponse(string Level, IReadOnlyList<string> Reasons, DateTimeOffset? ChangedAt)
{
    public static ParticipantRiskResponse From(Participant p) => new(p.RiskLevel, p.RiskReasons ?? [], p.RiskChangedAt);
}

/// <summary>
/// A participant's risk level, derived from the fraud decisions about the referrals they brought as an advocate
/// (docs/fraud.md). Only the advocate side counts: the checks judge whether an advocate earns a reward honestly,
/// and the friend of a flagged referral is as often the advocate's flatmate as an accomplice.
/// </summary>
public static class ParticipantRisk
{
    /// <summary>How many counted referrals are explained in <see cref="Participant.RiskReasons"/>, most recent first.</summary>
    public const int MaxReasons = 10;

    /// <summary>Whether a decision counts against the advocate.</summary>
    public static bool Counts(string? decision) =>
        decision is FraudDecision.Flagged or FraudDecision.Blocked or FraudDecision.Rejected;

    /// <summary>
    /// Two points for each referral blocked by the checks or voided after review, one for each waiting in the review
    /// queue: 0 is low, 1–2 medium, 3 or more high. A flag a reviewer cleared counts for nothing.
    /// </summary>
    public static string LevelFor(int blocked, int flagged) => (2 * blocked + flagged) switch
    {
        0 => RiskLevel.Low,
        <= 2 => RiskLevel.Medium,
        _ => RiskLevel.High,
    };

    /// <summary><c>participant.risk_changed</c> about <paramref name="advocate"/>, caused by a decision about <paramref name="cause"/>.</summary>
    public static OutboxMessage ChangedMessage(Campaign campaign, Participant advocate, string oldLevel, string newLevel,
        IReadOnlyList<string>? reasons, Referral cause, DateTimeOffset now) =>
        Outbox.Create(EventTypes.ParticipantRiskChanged, campaign.Id, new ParticipantRiskChangedData(
            new CampaignRef(campaign.Id, campaign.Name),
            new RiskParticipantRef(advocate.Id, advocate.Email, advocate.Name, advocate.Code, advocate.CustomValue),
            oldLevel, newLevel, reasons ?? [],
            new RiskReferralRef(cause.Id, cause.Status, cause.RiskScore, cause.FraudDecision),
            now), now);

    /// <summary>Why a counted referral counts, as <see cref="Participant.RiskReasons"/> says it.</summary>
    public static string Reason(string referralId, string decision, int score, List<ScreeningFinding> findings)
    {
        var what = decision switch
        {
            FraudDecision.Flagged => "waits in the review queue",
            FraudDecision.Rejected => "was voided after review",
            _ => "was blocked by the fraud checks",
        };
        var checks = findings.Count == 0 ? "" : ": " + string.Join("; ", findings.Select(f => $"{f.Check} ({f.Reason})"));
        return $"referral {referralId} {what}, risk {score}{checks}";
    }
}
