using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// The delivery rules over plain objects, with no database, server, clock or network: which held delivery goes next,
/// and what an attempt's result makes of the delivery and its endpoint. The behaviour tests (<see cref="WebhookDeliveryTests"/>
/// and others) run the same rules against real receivers.
/// </summary>
public class DeliveryScheduleTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 14, 9, 30, 0, TimeSpan.Zero);
    private static readonly TimeSpan FiveDays = TimeSpan.FromDays(5);

    private static readonly DeliveryLimits Limits = new(MaxConcurrency: 4, PerEndpoint: 2, Timeout: TimeSpan.FromSeconds(15),
        ClaimLease: TimeSpan.FromSeconds(60));

    private static WebhookEndpoint Endpoint(string id, int? rate = null) => new()
    {
        Id = id,
        Url = $"https://{id}.example.com/hooks",
        Format = WebhookFormat.Json,
        Secret = "whsec_test",
        RateLimitPerSecond = rate,
    };

    private static readonly OutboxMessage Message = new()
    {
        Id = "msg_1",
        Type = EventTypes.ReferralCreated,
        Data = "{}",
        CreatedAt = Now,
    };

    private static ClaimedDelivery Held(string id, WebhookEndpoint endpoint, int attempts = 0, TimeSpan? lease = null) =>
        new(id, Message, endpoint, Now + (lease ?? TimeSpan.FromSeconds(60)), attempts);

    private static List<string> Ids(IEnumerable<ClaimedDelivery> deliveries) => deliveries.Select(d => d.Id).ToList();

    // ---------------------------------------------------------------- which goes next

    [Fact]
    public void Held_deliveries_start_oldest_first_within_the_overall_bound()
    {
        var schedule = new DeliverySchedule(Limits);
        var (a, b, c) = (Endpoint("a"), Endpoint("b"), Endpoint("c"));
        schedule.Hold([Held("d1", a), Held("d2", b), Held("d3", c), Held("d4", a), Held("d5", b)]);

        Assert.Equal(["d1", "d2", "d3", "d4"], Ids(schedule.Start(Now)));
        Assert.Equal(4, schedule.Running);
        Assert.Empty(schedule.Start(Now));
    }

    [Fact]
    public void One_endpoint_takes_at_most_its_share_of_slots_and_the_others_go_past_it()
    {
        var schedule = new DeliverySchedule(Limits);
        var (slow, other) = (Endpoint("slow"), Endpoint("other"));
        schedule.Hold([Held("s1", slow), Held("s2", slow), Held("s3", slow), Held("o1", other)]);

        Assert.Equal(["s1", "s2", "o1"], Ids(schedule.Start(Now)));

        // A finished attempt frees its endpoint's slot while it waits for its record: the next of that endpoint goes.
        schedule.Sent(Held("s1", slow));
        Assert.Equal(["s3"], Ids(schedule.Start(Now)));
    }

    [Fact]
    public void An_endpoints_rate_holds_its_deliveries_back_until_a_second_after_the_first_start()
    {
        var schedule = new DeliverySchedule(Limits with { PerEndpoint = 10, MaxConcurrency = 10 });
        var limited = Endpoint("limited", rate: 2);
        schedule.Hold([Held("r1", limited), Held("r2", limited), Held("r3", limited)]);

        Assert.Equal(["r1", "r2"], Ids(schedule.Start(Now)));
        Assert.Empty(schedule.Start(Now.AddMilliseconds(500)));
        Assert.Equal(Now.AddSeconds(1), schedule.NextRateSlot(Now.AddMilliseconds(500)));
        Assert.Equal(["r3"], Ids(schedule.Start(Now.AddSeconds(1))));
        Assert.Null(schedule.NextRateSlot(Now.AddSeconds(1)));
    }

    [Fact]
    public void A_delivery_too_close_to_the_end_of_its_lease_is_let_go_of_rather_than_started()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        // 15 s timeout: an attempt needs that much lease left.
        schedule.Hold([Held("late", a, lease: TimeSpan.FromSeconds(10)), Held("fine", a)]);

        Assert.Equal(["fine"], Ids(schedule.Start(Now)));
        Assert.False(schedule.Holds("late"));
        Assert.True(schedule.Holds("fine"));
    }

    [Fact]
    public void A_delivery_whose_lease_runs_short_behind_a_busy_endpoint_is_let_go_of_and_frees_its_room()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold([Held("first", a), Held("second", a), Held("long", a), Held("short", a, lease: TimeSpan.FromSeconds(30))]);
        Assert.Equal(["first", "second"], Ids(schedule.Start(Now)));
        var room = schedule.Room;

        // Endpoint a is at its two slots; 20 s later "short", behind "long", has less than the 15 s an attempt needs.
        Assert.Empty(schedule.Start(Now.AddSeconds(20)));

        Assert.False(schedule.Holds("short"));
        Assert.True(schedule.Holds("long"));
        Assert.Equal(room + 1, schedule.Room);
    }

    [Fact]
    public void A_delivery_held_after_a_start_with_a_shorter_lease_than_those_waiting_is_still_let_go_of_in_time()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold([Held("first", a), Held("second", a), Held("long", a)]);
        Assert.Equal(["first", "second"], Ids(schedule.Start(Now)));

        // Held later, behind the busy endpoint, with less lease left than "long": 20 s on, it has too little to start.
        schedule.Hold([Held("short", a, lease: TimeSpan.FromSeconds(30))]);
        Assert.Empty(schedule.Start(Now.AddSeconds(20)));

        Assert.False(schedule.Holds("short"));
        Assert.True(schedule.Holds("long"));
    }

    // Limits: two slots per endpoint, so each endpoint holds at most 64 unsent and is stocked from 32 waiting.
    [Fact]
    public void Room_bounds_what_is_held_in_all_and_per_endpoint_what_is_held_unsent()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        Assert.Equal(256, schedule.Room);
        Assert.Equal(64, schedule.RoomFor("a"));

        var held = Enumerable.Range(0, 20).Select(i => Held($"d{i}", a)).ToList();
        schedule.Hold(held);
        Assert.Equal(236, schedule.Room);
        Assert.Equal(44, schedule.RoomFor("a"));

        // On the wire: still unsent. Sent and waiting for their record: the endpoint's room is back, the overall one
        // only once the record lets go of them.
        var started = schedule.Start(Now);
        Assert.Equal(44, schedule.RoomFor("a"));
        started.ForEach(schedule.Sent);
        Assert.Equal(46, schedule.RoomFor("a"));
        Assert.Equal(236, schedule.Room);
        started.ForEach(d => schedule.Release(d, wasSent: true));
        Assert.Equal(238, schedule.Room);
        Assert.Equal(64, schedule.RoomFor("b"));
    }

    [Fact]
    public void A_claim_comes_while_every_slot_is_busy_once_an_endpoint_runs_low()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold(Enumerable.Range(0, 34).Select(i => Held($"d{i}", a)));

        // Two on the wire, 32 waiting: stocked, no claim asked for.
        var first = schedule.Start(Now);
        Assert.False(schedule.LowOnWork);
        Assert.Equal(0, schedule.ClaimRooms()["a"]);

        // One more sent: 31 waiting, its next rounds are claimed while these are on the wire.
        schedule.Sent(first[0]);
        schedule.Start(Now);
        Assert.True(schedule.LowOnWork);
        Assert.Equal(64 - 31 - 2, schedule.ClaimRooms()["a"]);
        Assert.Equal(schedule.Room, schedule.ClaimRoom(Now));
    }

    [Fact]
    public void A_slow_endpoint_stocked_with_deliveries_leaves_the_others_room_and_claims()
    {
        var schedule = new DeliverySchedule(Limits);
        var (slow, fast) = (Endpoint("slow"), Endpoint("fast"));
        schedule.Hold(Enumerable.Range(0, 64).Select(i => Held($"s{i}", slow)));
        schedule.Start(Now);

        // The slow endpoint is at its bound and stocked: it asks for nothing, yet the others keep their room ...
        Assert.Equal(0, schedule.RoomFor("slow"));
        Assert.Equal(64, schedule.RoomFor("fast"));
        Assert.False(schedule.LowOnWork);
        Assert.Equal(new Dictionary<string, int> { ["slow"] = 0 }, schedule.ClaimRooms());

        // ... and a claim for them (their retries, a backlog) still comes every ClaimEvery, passing the slow one by.
        Assert.Equal(schedule.Room, schedule.ClaimRoom(Now));
        schedule.BeginClaim(Now);
        schedule.EndClaim();
        Assert.Equal(0, schedule.ClaimRoom(Now.AddMilliseconds(500)));
        Assert.Equal(schedule.Room, schedule.ClaimRoom(Now.AddSeconds(1)));

        // Once another endpoint is being sent to and runs low, claims come as fast as it drains.
        schedule.Hold([Held("f1", fast)]);
        schedule.Start(Now);
        Assert.True(schedule.LowOnWork);
        Assert.Equal(schedule.Room, schedule.ClaimRoom(Now.AddMilliseconds(500)));
    }

    [Fact]
    public void However_many_endpoints_are_stocked_half_the_room_stays_for_the_others()
    {
        var schedule = new DeliverySchedule(Limits);
        // Six slow endpoints, each at its bound of 64: 384 held, more than the 256 in all.
        for (var e = 0; e < 6; e++)
        {
            var slow = Endpoint($"slow{e}");
            schedule.Hold(Enumerable.Range(0, 64).Select(i => Held($"s{e}-{i}", slow)));
        }
        schedule.Start(Now);

        Assert.Equal(128, schedule.Room);
        Assert.Equal(64, schedule.RoomFor("fast"));
        Assert.All(schedule.ClaimRooms().Values, room => Assert.Equal(0, room));

        // What the others take counts in full.
        var fast = Endpoint("fast");
        schedule.Hold(Enumerable.Range(0, 10).Select(i => Held($"f{i}", fast)));
        Assert.Equal(118, schedule.Room);
    }

    [Fact]
    public void A_delivery_is_let_go_of_once_its_attempt_is_recorded()
    {
        var schedule = new DeliverySchedule(Limits);
        var delivery = Held("d1", Endpoint("a"));
        schedule.Hold([delivery]);
        schedule.Start(Now);
        schedule.Sent(delivery);
        Assert.True(schedule.Holds("d1"));

        schedule.Release(delivery, wasSent: true);
        Assert.False(schedule.Holds("d1"));
        Assert.Equal(0, schedule.Held);
        Assert.Equal(0, schedule.Running);
    }

    [Fact]
    public void A_claim_read_before_the_record_of_the_last_attempt_is_dropped_so_the_delivery_is_not_sent_twice()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        var delivery = Held("d1", a);
        schedule.Hold([delivery]);
        schedule.Start(Now);
        schedule.Sent(delivery);

        schedule.BeginClaim(Now);
        // The lease ran out while the record waited; the claim read the row before the record committed.
        schedule.Release(delivery, wasSent: true);
        schedule.Hold([Held("d1", a, attempts: 0)], reclaimed: true);
        schedule.EndClaim();

        Assert.False(schedule.Holds("d1"));
        Assert.Empty(schedule.Start(Now));
    }

    [Fact]
    public void A_claim_of_a_delivery_still_in_hand_is_held_once_the_hand_lets_go()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        var delivery = Held("d1", a);
        schedule.Hold([delivery]);
        schedule.Start(Now);
        schedule.Sent(delivery);

        // Claimed again, read after the record of attempt 1 committed (a retry due at once), before it was let go of.
        schedule.Hold([Held("d1", a, attempts: 1)], reclaimed: true);
        Assert.Empty(schedule.Start(Now));

        schedule.Release(delivery, wasSent: true);
        var again = Assert.Single(schedule.Start(Now));
        Assert.Equal(1, again.Attempts);
    }

    [Fact]
    public void Renewed_leases_are_what_the_waiting_deliveries_start_under()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold([Held("d1", a, lease: TimeSpan.FromSeconds(20))]);

        Assert.Empty(schedule.Renewed(schedule.Snapshot(), new HashSet<string> { "d1" }, Now.AddSeconds(60)));
        var started = Assert.Single(schedule.Start(Now.AddSeconds(10)));
        Assert.Equal(Now.AddSeconds(60), started.ClaimedUntil);
    }

    [Fact]
    public void A_waiting_delivery_the_renewal_did_not_keep_is_dropped_unsent_and_one_on_the_wire_stays_held()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold([Held("d1", a), Held("d2", a), Held("d3", a), Held("d4", a)]);
        Assert.Equal(["d1", "d2"], Ids(schedule.Start(Now)));

        // d1 (on the wire) and d3 (waiting) were cancelled, or taken over by another instance: the renewal kept neither.
        var dropped = schedule.Renewed(schedule.Snapshot(), new HashSet<string> { "d2", "d4" }, Now.AddSeconds(60));

        Assert.Equal(["d3"], dropped);
        Assert.False(schedule.Holds("d3"));
        Assert.True(schedule.Holds("d1"));
        schedule.Sent(Held("d1", a));
        Assert.Equal(["d4"], Ids(schedule.Start(Now)));
        schedule.Release(Held("d1", a), wasSent: true);
        Assert.Equal(2, schedule.Held);
    }

    [Fact]
    public void A_delivery_that_came_back_under_a_new_claim_after_the_renewal_read_is_not_dropped()
    {
        var schedule = new DeliverySchedule(Limits);
        var a = Endpoint("a");
        schedule.Hold([Held("d1", a, lease: TimeSpan.FromSeconds(20))]);
        var asked = schedule.Snapshot();

        // Its lease ran out and this instance claimed it again before the renewal's answer came back without it.
        schedule.Hold([Held("d1", a, lease: TimeSpan.FromSeconds(60))], reclaimed: true);

        Assert.Empty(schedule.Renewed(asked, new HashSet<string>(), Now.AddSeconds(30)));
        var started = Assert.Single(schedule.Start(Now.AddSeconds(25)));
        Assert.Equal(Now.AddSeconds(60), started.ClaimedUntil);
    }

    [Fact]
    public void Stopping_lets_go_of_the_waiting_deliveries_only()
    {
        var schedule = new DeliverySchedule(Limits);
        var (a, b) = (Endpoint("a"), Endpoint("b"));
        schedule.Hold([Held("d1", a), Held("d2", a), Held("d3", a), Held("d4", b)]);
        Assert.Equal(["d1", "d2", "d4"], Ids(schedule.Start(Now)));
        schedule.Hold([Held("d5", b)]);

        Assert.Equal(["d3", "d5"], schedule.LetGoOfWaiting().Order());
        Assert.Equal(3, schedule.Held);
        Assert.Empty(schedule.Start(Now));
    }

    // ---------------------------------------------------------------- what an attempt leads to

    private static DeliveryState Pending(int attempts = 0, bool isTest = false, string status = DeliveryStatus.Pending) =>
        new("dlv_1", "whe_1", status, attempts, attempts, isTest, Now, null, null, null);

    private static EndpointHealth Healthy(bool retryUntilAcknowledged = false, DateTimeOffset? failingSince = null) =>
        new("whe_1", true, retryUntilAcknowledged, failingSince);

    private static AttemptOutcome Answered(int? status, TimeSpan? retryAfter = null) =>
        new("req_1", "POST", "https://a.example.com/hooks", status, 12, null, status is >= 200 and < 300 ? null : "failed", retryAfter);

    [Fact]
    public void A_2xx_completes_the_delivery_and_clears_the_endpoints_failing_run()
    {
        var result = DeliverySchedule.Record(Pending(attempts: 2), Healthy(failingSince: Now.AddHours(-1)), EventTypes.ReferralCreated,
            Answered(204), Now, FiveDays, jitter: 0)!;

        Assert.Equal(DeliveryStatus.Succeeded, result.Delivery.Status);
        Assert.Equal(3, result.Delivery.Attempts);
        Assert.Equal(Now, result.Delivery.CompletedAt);
        Assert.Equal(204, result.Delivery.LastStatusCode);
        Assert.Null(result.Endpoint.FailingSince);
        Assert.Null(result.Disabled);
        Assert.True(result.Acknowledged);
    }

    [Fact]
    public void A_test_message_acknowledged_releases_nothing()
    {
        var result = DeliverySchedule.Record(Pending(isTest: true), Healthy(), EventTypes.ReferralApproved, Answered(200), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Succeeded, result.Delivery.Status);
        Assert.False(result.Acknowledged);
    }

    [Theory]
    [InlineData(0, 5)]
    [InlineData(1, 300)]
    [InlineData(2, 1800)]
    [InlineData(6, 36000)]
    public void A_failure_is_retried_on_the_schedule(int attemptsBefore, int waitSeconds)
    {
        var result = DeliverySchedule.Record(Pending(attemptsBefore), Healthy(), EventTypes.ReferralCreated, Answered(500), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Pending, result.Delivery.Status);
        Assert.Equal(Now.AddSeconds(waitSeconds), result.Delivery.NextAttemptAt);
        Assert.Equal(Now, result.Endpoint.FailingSince);
        Assert.False(result.Exhausted);
    }

    [Fact]
    public void Jitter_spreads_a_retry_by_at_most_a_tenth()
    {
        var late = DeliverySchedule.Record(Pending(2), Healthy(), EventTypes.ReferralCreated, Answered(500), Now, FiveDays, jitter: 1)!;
        var early = DeliverySchedule.Record(Pending(2), Healthy(), EventTypes.ReferralCreated, Answered(500), Now, FiveDays, jitter: -1)!;

        Assert.Equal(Now.AddSeconds(1980), late.Delivery.NextAttemptAt);
        Assert.Equal(Now.AddSeconds(1620), early.Delivery.NextAttemptAt);
    }

    [Fact]
    public void Retry_after_from_the_receiver_sets_the_next_attempt()
    {
        var result = DeliverySchedule.Record(Pending(0), Healthy(), EventTypes.ReferralCreated, Answered(429, TimeSpan.FromSeconds(42)),
            Now, FiveDays, 0)!;

        Assert.Equal(Now.AddSeconds(42), result.Delivery.NextAttemptAt);
    }

    [Fact]
    public void A_receiver_that_always_asks_to_retry_later_still_runs_out_of_attempts()
    {
        var result = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts - 1), Healthy(), EventTypes.ReferralCreated,
            Answered(429, TimeSpan.Zero), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, result.Delivery.Status);
        Assert.True(result.Exhausted);
    }

    [Fact]
    public void The_last_scheduled_failure_gives_up_and_raises_exhausted()
    {
        var result = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts - 1), Healthy(), EventTypes.ReferralCreated, Answered(500),
            Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, result.Delivery.Status);
        Assert.Equal(Now, result.Delivery.CompletedAt);
        Assert.True(result.Exhausted);
    }

    [Fact]
    public void An_operational_event_or_a_test_that_runs_out_raises_nothing()
    {
        var operational = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts - 1), Healthy(), EventTypes.EndpointDisabled,
            Answered(500), Now, FiveDays, 0)!;
        var test = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts - 1, isTest: true), Healthy(), EventTypes.ReferralCreated,
            Answered(500), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, operational.Delivery.Status);
        Assert.False(operational.Exhausted);
        Assert.Equal(DeliveryStatus.Failed, test.Delivery.Status);
        Assert.False(test.Exhausted);
    }

    [Fact]
    public void An_approval_to_an_endpoint_that_retries_until_acknowledged_keeps_its_last_interval_past_the_schedule()
    {
        var result = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts + 3), Healthy(retryUntilAcknowledged: true),
            EventTypes.ReferralApproved, Answered(503), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Pending, result.Delivery.Status);
        Assert.Equal(Now.AddHours(10), result.Delivery.NextAttemptAt);
        Assert.False(result.Exhausted);

        // Another type to the same endpoint runs out as usual.
        var other = DeliverySchedule.Record(Pending(RetrySchedule.MaxAttempts - 1), Healthy(retryUntilAcknowledged: true),
            EventTypes.ReferralCreated, Answered(503), Now, FiveDays, 0)!;
        Assert.Equal(DeliveryStatus.Failed, other.Delivery.Status);
    }

    [Fact]
    public void Gone_fails_the_delivery_and_disables_the_endpoint()
    {
        var result = DeliverySchedule.Record(Pending(), Healthy(), EventTypes.ReferralCreated, Answered(410), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, result.Delivery.Status);
        Assert.False(result.Endpoint.Enabled);
        Assert.Equal(new Disabling(DisabledReason.Gone, "The receiver answered 410 Gone."), result.Disabled);
    }

    [Fact]
    public void An_endpoint_already_disabled_is_not_disabled_again()
    {
        var result = DeliverySchedule.Record(Pending(), Healthy() with { Enabled = false }, EventTypes.ReferralCreated, Answered(410),
            Now, FiveDays, 0)!;

        Assert.Null(result.Disabled);
    }

    [Fact]
    public void Failing_for_five_days_disables_the_endpoint_unless_it_retries_until_acknowledged()
    {
        var since = Now - FiveDays;
        var result = DeliverySchedule.Record(Pending(3), Healthy(failingSince: since), EventTypes.ReferralCreated, Answered(500),
            Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, result.Delivery.Status);
        Assert.Equal(DisabledReason.Failing, result.Disabled!.Reason);
        Assert.Equal($"Every attempt failed since {since:O}.", result.Disabled.Detail);
        Assert.False(result.Exhausted);

        var patient = DeliverySchedule.Record(Pending(3), Healthy(retryUntilAcknowledged: true, failingSince: since),
            EventTypes.ReferralCreated, Answered(500), Now, FiveDays, 0)!;
        Assert.Null(patient.Disabled);
        Assert.Equal(DeliveryStatus.Pending, patient.Delivery.Status);
    }

    [Fact]
    public void A_cancelled_delivery_is_not_recorded()
    {
        Assert.Null(DeliverySchedule.Record(Pending(status: DeliveryStatus.Cancelled), Healthy(), EventTypes.ReferralCreated,
            Answered(200), Now, FiveDays, 0));
    }

    [Fact]
    public void A_delivery_failed_with_its_endpoint_while_on_the_wire_stays_failed()
    {
        var result = DeliverySchedule.Record(Pending(status: DeliveryStatus.Failed), Healthy(), EventTypes.ReferralCreated,
            Answered(500), Now, FiveDays, 0)!;

        Assert.Equal(DeliveryStatus.Failed, result.Delivery.Status);
        Assert.Equal(1, result.Delivery.Attempts);
        Assert.Equal(Now, result.Endpoint.FailingSince);
    }

    [Fact]
    public void An_acknowledgement_that_could_not_be_recorded_is_retried()
    {
        var result = DeliverySchedule.Record(Pending(), Healthy(), EventTypes.ReferralApproved, Answered(200), Now, FiveDays, 0,
            forceRetry: true)!;

        Assert.Equal(DeliveryStatus.Pending, result.Delivery.Status);
        Assert.Equal(Now.AddSeconds(5), result.Delivery.NextAttemptAt);
        Assert.False(result.Acknowledged);
    }
}
