using Referloop.Campaigns;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

public sealed partial class ReferralCore
{
    /// <summary>
    /// What a refund (or chargeback) recorded in <paramref name="refund"/> does: the purchase with its order id stops
    /// counting. The referral that purchase converted is voided, unless the campaign keeps it while another purchase
    /// of the friend still counts (<see cref="RefundPolicy"/>). Voided, the rewards its conversion earned are taken
    /// back (<c>revoked</c>, or <c>clawback_required</c> once paid), the advocate's conversion count drops by one, and
    /// a goal or milestone reward of a count the advocate no longer reaches goes with it. The refund's row is the
    /// caller's; the core sets its friend, referral and answer. An unknown order changes nothing.
    /// </summary>
    public (EventOutcome Outcome, ReferralChanges Changes) Refund(ReferralFacts facts, TrackedEvent refund)
    {
        var changes = new ReferralChanges();
        var orderId = refund.RefundOf ?? throw new ArgumentException("A refund names the order it refunds.", nameof(refund));
        if (facts.RefundedPurchase is not { } purchase)
        {
            return Answer(refund, new EventOutcome(refund.Id, false, false, null,
                $"no purchase with order id '{orderId}' was reported to the campaign", null, [], null,
                new EventRefund(orderId, null, RefundEffect.UnknownOrder)), changes);
        }
        refund.ParticipantId = purchase.ParticipantId;
        refund.ReferralId = purchase.ReferralId;
        if (facts.Referral is null || facts.Advocate is null || facts.Friend is null)
        {
            return Answer(refund, new EventOutcome(refund.Id, false, false, null, "the purchase was not attributed to an advocate",
                null, [], null, new EventRefund(orderId, purchase.Id, RefundEffect.None)), changes);
        }

        var work = new Work(facts, changes, new ReferralSnapshot(facts.Campaign, facts.Referral, facts.Advocate, facts.Friend,
            facts.Counters.GetValueOrDefault(AdvocateCounters.Conversions)), refund);
        var referral = work.Referral;
        var converted = referral.QualifiedAt is not null
            && referral.Status is ReferralStatus.Qualified or ReferralStatus.Approved or ReferralStatus.Flagged;
        string effect;
        string? reason = null;
        if (!converted)
        {
            effect = RefundEffect.None;
            reason = referral.Status == ReferralStatus.Voided ? "the referral is voided already" : "the purchase had not converted the referral";
        }
        else if (work.Campaign.Refunds == RefundPolicy.KeepIfOtherPurchases && facts.OtherCountedPurchases > 0)
        {
            effect = RefundEffect.Kept;
            reason = facts.OtherCountedPurchases == 1
                ? "another purchase of the friend still qualifies the referral"
                : $"{facts.OtherCountedPurchases} other purchases of the friend still qualify the referral";
            // The status stays; the history still shows that the order was taken back, and why nothing else changed.
            Record(work, referral, referral.Status, referral.Status, Clip($"{RefundReason(refund)} (order {orderId}); {reason}"));
        }
        else
        {
            VoidForRefund(work, refund, purchase, orderId);
            effect = RefundEffect.Voided;
            work.Conversion = new EventConversion(ConversionStatus.Fail, work.Conversions, false);
        }

        var outcome = new EventOutcome(refund.Id, false, true, referral.AttributedBy, reason,
            new EventReferral(referral.Id, referral.Status, referral.Reason, work.Advocate.Id, work.Friend.Id, referral.RiskScore),
            work.Touched.Select(RewardResponse.From).ToList(), work.Conversion, new EventRefund(orderId, purchase.Id, effect));
        return Answer(refund, outcome, changes);
    }

    /// <summary><c>refunded</c>, or <c>chargeback</c> for a chargeback: the reason the referral and its rewards show.</summary>
    private static string RefundReason(TrackedEvent refund) =>
        refund.Type == EventKinds.Chargeback ? EventKinds.Chargeback : "refunded";

    private static void VoidForRefund(Work work, TrackedEvent refund, TrackedEvent purchase, string orderId)
    {
        var now = work.Now;
        var referral = work.Referral;
        var reason = RefundReason(refund);
        Move(work, ReferralStatus.Voided, reason);
        referral.VoidedAt = now;
        referral.ApproveAfter = null;
        referral.EventType = refund.Type;
        referral.OrderId = orderId;
        referral.PurchaseValue = refund.PurchaseValue ?? purchase.PurchaseValue;
        referral.Currency = refund.Currency ?? purchase.Currency;
        // The conversion no longer counts: goals and milestones are reached by the conversions that still stand.
        if (work.Counter(AdvocateCounters.Conversions) > 0)
        {
            work.Conversions = work.Add(AdvocateCounters.Conversions, -1);
        }
        work.Send(work.Snapshot.Message(EventTypes.ReferralVoided, now));
        work.Send(work.Snapshot.ConversionMessage(ConversionStatus.Fail, now));

        // What the conversion earned; the friend's sign-up rewards and custom-event rewards were earned otherwise.
        var earned = work.RewardsOfReferral.Where(r => r.Trigger == RewardTrigger.Converted && IsStanding(r))
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        foreach (var reward in earned)
        {
            Revoke(work, reward, reason);
        }
        RevokeUnreached(work, (reward, count) => $"{reason}: order {orderId} took the advocate's conversions from {reward.Milestone} to {count}");
    }

    /// <summary>
    /// Takes back the advocate's goal and milestone rewards of their other referrals that the conversions still
    /// standing (<see cref="Work.Conversions"/>) no longer reach.
    /// </summary>
    private static void RevokeUnreached(Work work, Func<Reward, int, string> reason)
    {
        var count = work.Conversions;
        var unreached = work.Facts.CountedConversionRewards
            .Where(r => r.ReferralId != work.Referral.Id && r.Milestone > count && IsStanding(r))
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        foreach (var reward in unreached)
        {
            Revoke(work, reward, reason(reward, count));
        }
    }

    private static bool IsStanding(Reward reward) =>
        reward.Status is RewardStatus.Pending or RewardStatus.Approved or RewardStatus.Issued;

    /// <summary>Takes a reward back: <c>revoked</c> while unpaid, <c>clawback_required</c> once marked paid.</summary>
    private static void Revoke(Work work, Reward reward, string reason)
    {
        GiveBackLimits(work, reward);
        reward.Status = reward.PaidAt is null ? RewardStatus.Revoked : RewardStatus.ClawbackRequired;
        reward.Reason = Clip(reason);
        reward.PendingReason = null;
        reward.CouponDueAt = null;
        reward.UpdatedAt = work.Now;
        work.Changes.Changed(reward);
        work.Touch(reward);
        work.Send(work.Snapshot.RewardMessage(reward, reward.UpdatedAt));
    }
}
