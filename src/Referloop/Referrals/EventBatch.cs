using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Tracking;

namespace Referloop.Referrals;

/// <summary>An event to decide in a batch: recorded already, with the coupon code its friend used.</summary>
public sealed record EventToDecide(Campaign Campaign, TrackedEvent Event, string? CouponCode);

/// <summary>
/// What a batch of events is decided over: everything read for all of them at once (<see cref="ReferralStore"/>),
/// kept as one set of objects so that each event sees what the ones before it changed: an advocate's counters,
/// risk level, free coupon codes, friends of the last hour. Events of one batch never share a friend or an order
/// (the batcher keeps such events apart), so only what belongs to advocates and campaigns is shared.
/// </summary>
public sealed class EventBatch
{
    public required DateTimeOffset Now { get; init; }

    /// <summary>Participants by id: one object per row, whichever query read it.</summary>
    public Dictionary<string, Participant> Participants { get; } = [];

    /// <summary>Friends by event id: the campaign's participant with the event's email.</summary>
    public Dictionary<string, Participant> Friends { get; } = [];

    public Dictionary<string, Referral> ReferralsByFriend { get; } = [];
    public Dictionary<string, AttributionMatch> Matches { get; } = [];
    public Dictionary<string, Dictionary<string, int>> Counters { get; } = [];
    public Dictionary<string, List<Reward>> Rewards { get; } = [];
    public Dictionary<string, List<CountedReferral>> Counted { get; } = [];
    public Dictionary<string, bool> Listeners { get; } = [];
    public Dictionary<string, Dictionary<string, CouponSupply>> Coupons { get; } = [];
    public Dictionary<string, FraudFacts> Fraud { get; } = [];
    public HashSet<string> CustomEventsSeen { get; } = [];

    // What earlier events of the batch added to the fraud facts of an advocate.
    private readonly Dictionary<string, List<string>> _ips = [];
    private readonly Dictionary<string, List<string>> _couponCodes = [];
    private readonly Dictionary<string, int> _friends = [];

    /// <summary>Everything the batch decided, to be written at once.</summary>
    public ReferralChanges Changes { get; } = new();

    /// <summary>One object per participant row: the first read wins.</summary>
    public Participant One(Participant participant) =>
        Participants.TryAdd(participant.Id, participant) ? participant : Participants[participant.Id];

    public ReferralFacts FactsFor(EventToDecide item)
    {
        var (campaign, tracked, _) = item;
        var friend = Friends.GetValueOrDefault(tracked.Id);
        var referral = friend is null ? null : ReferralsByFriend.GetValueOrDefault(friend.Id);
        var match = referral is null ? Matches.GetValueOrDefault(tracked.Id) : null;
        var advocate = referral is not null ? Participants[referral.AdvocateId] : match?.Advocate;
        if (advocate is null)
        {
            return new ReferralFacts { Campaign = campaign, Now = Now, Friend = friend };
        }
        return new ReferralFacts
        {
            Campaign = campaign,
            Now = Now,
            Referral = referral,
            Advocate = advocate,
            Friend = friend,
            Match = match,
            Counters = Counters[advocate.Id],
            Rewards = referral is null ? [] : Rewards[referral.Id],
            Fraud = FraudOf(tracked.Id, advocate.Id),
            CountedReferrals = Counted[advocate.Id],
            ApprovalListeners = Listeners[campaign.Id],
            CustomEventSeen = CustomEventsSeen.Contains(tracked.Id),
            Coupons = Coupons[campaign.Id],
        };
    }

    private FraudFacts FraudOf(string eventId, string advocateId)
    {
        var facts = Fraud.GetValueOrDefault(eventId) ?? FraudFacts.None;
        return facts with
        {
            AdvocateIps = [.. facts.AdvocateIps, .. _ips.GetValueOrDefault(advocateId) ?? []],
            AdvocateCouponCodes = [.. facts.AdvocateCouponCodes, .. _couponCodes.GetValueOrDefault(advocateId) ?? []],
            AdvocateFriendsLastHour = facts.AdvocateFriendsLastHour + _friends.GetValueOrDefault(advocateId),
        };
    }

    /// <summary>Takes in what one event decided, so that the events after it see it, and adds it to the batch's changes.</summary>
    public void Apply(ReferralChanges changes)
    {
        foreach (var participant in changes.NewParticipants)
        {
            One(participant);
        }
        foreach (var participant in changes.NewParticipants.Concat(changes.ChangedParticipants))
        {
            if (participant is { IsInvited: true, ReferredById: { } advocateId })
            {
                _friends[advocateId] = _friends.GetValueOrDefault(advocateId) + 1;
            }
        }
        foreach (var referral in changes.NewReferrals)
        {
            ReferralsByFriend[referral.FriendId] = referral;
            Rewards[referral.Id] = [];
        }
        foreach (var reward in changes.NewRewards)
        {
            Rewards[reward.ReferralId].Add(reward);
        }
        foreach (var ((participantId, name), delta) in changes.CounterDeltas)
        {
            var counters = Counters[participantId];
            counters[name] = counters.GetValueOrDefault(name) + delta;
        }
        foreach (var referral in changes.NewReferrals.Concat(changes.ChangedReferrals))
        {
            if (Counted.TryGetValue(referral.AdvocateId, out var counted))
            {
                counted.RemoveAll(r => r.Id == referral.Id);
                if (ParticipantRisk.Counts(referral.FraudDecision))
                {
                    counted.Insert(0, new CountedReferral(referral.Id, referral.FraudDecision!, referral.RiskScore, referral.Findings));
                }
            }
        }
        foreach (var (participantId, ip) in changes.SeenIps)
        {
            (_ips.TryGetValue(participantId, out var ips) ? ips : _ips[participantId] = []).Add(ip);
        }
        foreach (var reward in changes.NewRewards.Concat(changes.ChangedRewards))
        {
            if (reward.CouponCode is { } code && changes.CouponClaims.Any(c => c.RewardId == reward.Id))
            {
                (_couponCodes.TryGetValue(reward.ParticipantId, out var codes) ? codes : _couponCodes[reward.ParticipantId] = []).Add(code);
            }
        }
        Changes.Absorb(changes);
    }
}
