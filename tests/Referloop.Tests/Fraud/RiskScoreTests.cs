using Referloop.Fraud;
using Referloop.Participants;

namespace Referloop.Tests.Fraud;

public class RiskScoreTests
{
    [Fact]
    public void A_clean_referral_scores_zero()
    {
        Assert.Equal(0, RiskScore.Of([]));
    }

    [Theory]
    [InlineData(new[] { FraudCheck.SameIp }, 50)]
    [InlineData(new[] { FraudCheck.DisposableEmail }, 30)]
    [InlineData(new[] { FraudCheck.SameIp, FraudCheck.DisposableEmail }, 65)]
    [InlineData(new[] { FraudCheck.SameIp, FraudCheck.SameIp }, 50)]
    [InlineData(new[] { FraudCheck.BlockedEmail, FraudCheck.BlockedIp, FraudCheck.SelfReferral, FraudCheck.CouponCycling }, 100)]
    [InlineData(new[] { "customCheck" }, 30)]
    public void Weighted_signals_combine_without_passing_100(string[] checks, int expected)
    {
        Assert.Equal(expected, RiskScore.Of(checks));
    }

    [Fact]
    public void Every_built_in_check_has_a_weight()
    {
        var checks = typeof(FraudCheck).GetFields().Select(f => (string)f.GetValue(null)!);
        Assert.All(checks, check => Assert.True(RiskScore.Weights.ContainsKey(check), check));
    }

    [Theory]
    [InlineData(0, 0, "low")]
    [InlineData(0, 1, "medium")]
    [InlineData(0, 2, "medium")]
    [InlineData(1, 0, "medium")]
    [InlineData(0, 3, "high")]
    [InlineData(1, 1, "high")]
    [InlineData(2, 0, "high")]
    public void Blocked_referrals_weigh_twice_a_flagged_one(int blocked, int flagged, string level)
    {
        Assert.Equal(level, ParticipantRisk.LevelFor(blocked, flagged));
    }

    [Fact]
    public void Only_flags_blocks_and_rejections_count_against_an_advocate()
    {
        Assert.True(ParticipantRisk.Counts(FraudDecision.Flagged));
        Assert.True(ParticipantRisk.Counts(FraudDecision.Blocked));
        Assert.True(ParticipantRisk.Counts(FraudDecision.Rejected));
        Assert.False(ParticipantRisk.Counts(FraudDecision.Cleared));
        Assert.False(ParticipantRisk.Counts(FraudDecision.Passed));
        Assert.False(ParticipantRisk.Counts(null));
    }
}
