using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>
/// Everything <see cref="ReferralCore"/> decides over for one command, read before it runs
/// (<see cref="ReferralStore"/>). Entities are plain objects, not tracked by any context: the core changes them in
/// place and lists what it changed in <see cref="ReferralChanges"/>.
/// </summary>
public sealed class ReferralFacts
{
    public required Campaign Campaign { get; init; }
    public required DateTimeOffset Now { get; init; }

    /// <summary>The referral the command is about, or the one the event's friend already has.</summary>
    public Referral? Referral { get; init; }

    /// <summary>The referral's advocate, or the one the event's attribution found.</summary>
    public Participant? Advocate { get; init; }

    /// <summary>The referral's friend, or the campaign's participant with the event's email.</summary>
    public Participant? Friend { get; init; }

    /// <summary>For an event whose friend has no referral yet: who referred them, or null when nothing points to anyone.</summary>
    public AttributionMatch? Match { get; init; }

    /// <summary>The advocate's counters (<see cref="AdvocateCounters"/>) by name; a missing one is 0.</summary>
    public IReadOnlyDictionary<string, int> Counters { get; init; } = new Dictionary<string, int>();

    /// <summary>The referral's rewards as stored, oldest first.</summary>
    public IReadOnlyList<Reward> Rewards { get; init; } = [];

    /// <summary>What the fraud checks know about the advocate and the clicks the event or referral names.</summary>
    public FraudFacts Fraud { get; init; } = FraudFacts.None;

    /// <summary>The advocate's other referrals whose fraud decision counts against them (<see cref="ParticipantRisk"/>), newest first.</summary>
    public IReadOnlyList<CountedReferral> CountedReferrals { get; init; } = [];

    /// <summary>Some enabled endpoint receives the campaign's <c>referral.approved</c>: approved rewards wait for its 2xx.</summary>
    public bool ApprovalListeners { get; init; }

    /// <summary>The friend has reported the event's custom type before, in a way that earns (server, or an accepted browser).</summary>
    public bool CustomEventSeen { get; init; }

    /// <summary>The coupon pools the campaign's rewards may draw from, by name; a pool that does not exist is absent.</summary>
    public IReadOnlyDictionary<string, CouponSupply> Coupons { get; init; } = new Dictionary<string, CouponSupply>();

    // ------------------------------------------------------------ refunds

    /// <summary>For a refund: the campaign's purchase with its order id, or null when none was reported.</summary>
    public TrackedEvent? RefundedPurchase { get; init; }

    /// <summary>For a refund: how many other purchases of the referral's friend still count (none of them refunded).</summary>
    public int OtherCountedPurchases { get; init; }

    /// <summary>
    /// For a refund or a void: the advocate's goal and milestone rewards of conversions that still stand (pending,
    /// approved or issued), from any of their referrals; a count taken back takes its reward back too.
    /// </summary>
    public IReadOnlyList<Reward> CountedConversionRewards { get; set; } = [];
}

/// <summary>A referral whose fraud decision counts against its advocate.</summary>
public sealed record CountedReferral(string Id, string FraudDecision, int RiskScore, List<ScreeningFinding> Findings);

/// <summary>A coupon pool as the core sees it: free uploaded codes read ahead (oldest first), and whether it can mint more.</summary>
public sealed class CouponSupply(string poolId, bool hasCreateCouponUrl, IEnumerable<FreeCoupon> free, bool heldElsewhere = false)
{
    public string PoolId { get; } = poolId;
    public bool HasCreateCouponUrl { get; } = hasCreateCouponUrl;
    public Queue<FreeCoupon> Free { get; } = new(free);

    /// <summary>
    /// Free codes beyond <see cref="Free"/> were being handed out by other transactions when the pool was read (on
    /// PostgreSQL): once <see cref="Free"/> runs out the pool may not be empty, and a reward waits for a code instead.
    /// </summary>
    public bool HeldElsewhere { get; } = heldElsewhere;
}

public sealed record FreeCoupon(string Id, string Code);

/// <summary>
/// What <see cref="ReferralCore"/> decided: the rows to add and change, the conditions the stored rows must still
/// meet for the decision to hold (else the command runs again from a fresh read), and the messages to send.
/// </summary>
public sealed class ReferralChanges
{
    /// <summary>The events the changes came from, recorded with what processing set on them.</summary>
    public List<TrackedEvent> NewEvents { get; } = [];

    public List<Participant> NewParticipants { get; } = [];
    public List<Participant> ChangedParticipants { get; } = [];
    public List<Referral> NewReferrals { get; } = [];
    public List<Referral> ChangedReferrals { get; } = [];

    /// <summary>The status each changed referral had when it was read: it is only written if it still has it.</summary>
    public Dictionary<string, string> ExpectedStatus { get; } = [];

    public List<Reward> NewRewards { get; } = [];
    public List<Reward> ChangedRewards { get; } = [];

    /// <summary>How much each counter moves, by advocate and counter name.</summary>
    public Dictionary<(string ParticipantId, string Name), int> CounterDeltas { get; } = [];

    /// <summary>Uploaded codes handed to rewards: each only if still free.</summary>
    public List<CouponClaim> CouponClaims { get; } = [];

    /// <summary>Advocates' new risk levels, each written only if the level read is still stored.</summary>
    public Dictionary<string, RiskChange> Risks { get; } = [];

    /// <summary>Addresses participants acted from, for the same-IP check of their own referrals later.</summary>
    public List<(string ParticipantId, string Ip)> SeenIps { get; } = [];

    public List<OutboxMessage> Messages { get; } = [];

    /// <summary>A reward waits for its pool's create-coupon URL: the coupon requests are woken after the commit.</summary>
    public bool CouponsAwaited { get; set; }

    public void Changed(Participant participant)
    {
        if (!NewParticipants.Contains(participant) && !ChangedParticipants.Contains(participant))
        {
            ChangedParticipants.Add(participant);
        }
    }

    public void Changed(Reward reward)
    {
        if (!NewRewards.Contains(reward) && !ChangedRewards.Contains(reward))
        {
            ChangedRewards.Add(reward);
        }
    }

    /// <summary>
    /// Adds what a later command of the same transaction decided: rows it created stay new with their latest values,
    /// a stored row keeps the status and level it was first read with, counters add up, messages keep their order.
    /// </summary>
    public void Absorb(ReferralChanges later)
    {
        NewEvents.AddRange(later.NewEvents);
        NewParticipants.AddRange(later.NewParticipants);
        later.ChangedParticipants.ForEach(Changed);
        NewReferrals.AddRange(later.NewReferrals);
        foreach (var referral in later.ChangedReferrals.Where(r => !NewReferrals.Contains(r) && !ChangedReferrals.Contains(r)))
        {
            ChangedReferrals.Add(referral);
            ExpectedStatus[referral.Id] = later.ExpectedStatus[referral.Id];
        }
        NewRewards.AddRange(later.NewRewards);
        later.ChangedRewards.ForEach(Changed);
        foreach (var (key, delta) in later.CounterDeltas)
        {
            CounterDeltas[key] = CounterDeltas.GetValueOrDefault(key) + delta;
        }
        CouponClaims.AddRange(later.CouponClaims);
        foreach (var (participantId, risk) in later.Risks)
        {
            Risks[participantId] = Risks.TryGetValue(participantId, out var first) ? risk with { OldLevel = first.OldLevel } : risk;
        }
        SeenIps.AddRange(later.SeenIps);
        Messages.AddRange(later.Messages);
        CouponsAwaited |= later.CouponsAwaited;
    }
}

public sealed record CouponClaim(string CouponId, string RewardId, string ParticipantId);

public sealed record RiskChange(string ParticipantId, string? OldLevel, string NewLevel, List<string>? Reasons, DateTimeOffset? ChangedAt);
