namespace Referloop.Fraud;

/// <summary>
/// A referral's risk score, 0–100, from the weighted signals of the checks that tripped (docs/fraud.md).
/// Each distinct check contributes its weight as an independent probability, combined as
/// <c>100 × (1 − Π(1 − wᵢ))</c>: one strong signal scores high, weak signals add up, and the score never passes 100.
/// </summary>
public static class RiskScore
{
    /// <summary>The weight of each check, 0–1. A check the campaign sets to <c>allow</c> never trips, so it never counts.</summary>
    public static readonly IReadOnlyDictionary<string, double> Weights = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [FraudCheck.BlockedEmail] = 0.90,
        [FraudCheck.BlockedIp] = 0.85,
        [FraudCheck.SelfReferral] = 0.80,
        [FraudCheck.CouponCycling] = 0.70,
        [FraudCheck.SameIp] = 0.50,
        [FraudCheck.Velocity] = 0.40,
        [FraudCheck.DisposableEmail] = 0.30,
        // Anyone can report a conversion from a page; that it came from one says nothing about this referral.
        [FraudCheck.BrowserReported] = 0.0,
    };

    /// <summary>The weight of a check not in <see cref="Weights"/> (a custom screening's own check names).</summary>
    public const double UnknownCheckWeight = 0.30;

    public static int Of(IEnumerable<string> checks)
    {
        var clean = 1.0;
        foreach (var check in checks.Distinct(StringComparer.Ordinal))
        {
            clean *= 1 - Weights.GetValueOrDefault(check, UnknownCheckWeight);
        }
        return (int)Math.Round(100 * (1 - clean), MidpointRounding.AwayFromZero);
    }
}

/// <summary>
/// What the fraud screening and the review decided about a referral, the input of a participant's risk level.
/// </summary>
public static class FraudDecision
{
    /// <summary>Screened, nothing blocked or flagged it.</summary>
    public const string Passed = "passed";

    /// <summary>A check set to <c>flag</c> tripped: the referral waits in the review queue.</summary>
    public const string Flagged = "flagged";

    /// <summary>A check set to <c>block</c> tripped: the referral was voided by the screening.</summary>
    public const string Blocked = "blocked";

    /// <summary>
    /// Held for review only because its conversion was reported from a browser (<c>fraud.browserConversions</c>):
    /// it waits in the review queue like a flagged one, but says nothing against the advocate.
    /// </summary>
    public const string Held = "held";

    /// <summary>A reviewer approved a flagged referral.</summary>
    public const string Cleared = "cleared";

    /// <summary>A reviewer voided a flagged referral.</summary>
    public const string Rejected = "rejected";
}
