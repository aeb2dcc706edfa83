using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Who holds a delivery's claim, and who may let go of it: only its holder, when its attempt is recorded, when it drops
/// a delivery it has not started, or on stop. A person's cancel, replay, recover or disabling, and an erasure, leave a
/// live claim alone, so that an attempt still on the wire is never made a second time at once by another sender.
/// </summary>
public class DeliveryClaimTests(WebhookApp app) : EndpointTestClass(app)
{
    private async Task<(Receiver Receiver, string EndpointId)> Endpoint()
    {
        var receiver = await Receiver.StartAsync();
        Receivers.Add(receiver);
        // Subscribed to nothing that the tests publish: every delivery here is written by the test itself.
        var created = await App.CreateEndpoint(Client, new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralVoided } });
        var id = (string)created["id"]!;
        Endpoints.Add(id);
        return (receiver, id);
    }

    /// <summary>A pending delivery of a dispatched message, due now, claimed as given.</summary>
    private async Task<string> Delivery(string endpointId, string? claimedBy, DateTimeOffset? claimedUntil) =>
        (await Deliveries(endpointId, 1, App.Clock.GetUtcNow(), claimedBy, claimedUntil))[0];

    /// <summary>
    /// Pending deliveries of dispatched messages, due a millisecond apart from <paramref name="from"/>, claimed as given.
    /// </summary>
    private Task<List<string>> Deliveries(string endpointId, int count, DateTimeOffset from, string? claimedBy = null,
        DateTimeOffset? claimedUntil = null) => App.WithDb(async db =>
    {
        var now = App.Clock.GetUtcNow();
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var message = new OutboxMessage
            {
                Id = Ids.New("msg"),
                Type = EventTypes.ReferralVoided,
                Data = ExamplePayloads.Data[EventTypes.ReferralVoided],
                CreatedAt = now,
                DispatchedAt = now,
            };
            var delivery = new WebhookDelivery
            {
                Id = Ids.New("dlv"),
                MessageId = message.Id,
                EndpointId = endpointId,
                Status = DeliveryStatus.Pending,
                NextAttemptAt = from.AddMilliseconds(i),
                ClaimedBy = claimedBy,
                ClaimedUntil = claimedUntil,
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Outbox.Add(message);
            db.WebhookDeliveries.Add(delivery);
            ids.Add(delivery.Id);
        }
        await db.SaveChangesAsync();
        return ids;
    });

    private Task<WebhookDelivery> Row(string id) => App.WithDb(db => db.WebhookDeliveries.AsNoTracking().SingleAsync(d => d.Id == id));

    private Task<int> Logged(string id) => App.WithDb(db => db.WebhookAttempts.CountAsync(a => a.DeliveryId == id));

    private Task<ClaimedDelivery> Claimed(string id) => App.WithDb(async db =>
    {
        var row = await db.WebhookDeliveries.AsNoTracking().Include(d => d.Message).Include(d => d.Endpoint).SingleAsync(d => d.Id == id);
        return new ClaimedDelivery(row.Id, row.Message!, row.Endpoint!, row.ClaimedUntil ?? App.Clock.GetUtcNow(), row.Attempts);
    });

    private static AttemptOutcome Answered(int status) =>
        new(Ids.New("req"), "POST", "http://127.0.0.1/hook", status, 5, null, status is >= 200 and < 300 ? null : "failed", null);

    /// <summary>A lease that lasts the test (whole milliseconds, as PostgreSQL stores them).</summary>
    private DateTimeOffset Live()
    {
        var until = App.Clock.GetUtcNow() + TimeSpan.FromMinutes(5);
        return until.AddTicks(-(until.UtcTicks % TimeSpan.TicksPerMillisecond));
    }

    private DeliveryRecorder Recorder => App.Services.GetRequiredService<DeliveryRecorder>();

    [Fact]
    public async Task A_claim_finds_every_endpoints_due_deliveries_however_long_another_endpoints_backlog()
    {
        var (_, backlogged) = await Endpoint();
        var (_, other) = await Endpoint();
        // Due an hour from now on the server's clock, so that its own engine leaves them to the claims below. The
        // backlog's 300 come before the other endpoint's 3: a claim that looked at the oldest due rows of all endpoints
        // (a window of a few times its size) would see nothing but the backlog.
        var at = Live().AddHours(1);
        var backlog = await Deliveries(backlogged, 300, at);
        var others = await Deliveries(other, 3, at.AddSeconds(1));
        var claimAt = at.AddMinutes(1);
        var lease = TimeSpan.FromMinutes(1);

        var first = await App.WithDb(db => DeliveryEngine.ClaimAsync(db, "instance-a", claimAt, lease, limit: 8, rooms: new Dictionary<string, int>(),
            perEndpoint: 5, CancellationToken.None));
        Assert.Equal(backlog.Take(5).Concat(others).Order(), first.Order());

        // An endpoint the instance is stocked with (room 0) is passed by; one with some room gives no more than that.
        var later = await Deliveries(other, 2, at.AddSeconds(2));
        var rooms = new Dictionary<string, int> { [backlogged] = 0, [other] = 1 };
        var second = await App.WithDb(db => DeliveryEngine.ClaimAsync(db, "instance-a", claimAt, lease, limit: 8, rooms, perEndpoint: 5,
            CancellationToken.None));
        Assert.Equal(later.Take(1), second);
        Assert.Equal(5 + 3 + 1, await App.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.ClaimedBy == "instance-a")));
    }

    [Fact]
    public async Task A_record_lets_go_only_of_its_holders_claim_and_still_counts_the_attempt()
    {
        var (_, endpointId) = await Endpoint();
        var until = Live();
        // The lease under which "lapsed" sent this one ran out, and "other" took the delivery before the record landed.
        var takenOver = await Delivery(endpointId, "other", until);
        var own = await Delivery(endpointId, "lapsed", until);

        await Recorder.RecordAsync("lapsed", await Claimed(takenOver), Answered(200), CancellationToken.None);
        await Recorder.RecordAsync("lapsed", await Claimed(own), Answered(200), CancellationToken.None);

        var kept = await Row(takenOver);
        Assert.Equal((DeliveryStatus.Succeeded, 1, "other", (DateTimeOffset?)until), (kept.Status, kept.Attempts, kept.ClaimedBy, kept.ClaimedUntil));
        Assert.Equal(1, await Logged(takenOver));
        var released = await Row(own);
        Assert.Equal((DeliveryStatus.Succeeded, 1, (string?)null, (DateTimeOffset?)null),
            (released.Status, released.Attempts, released.ClaimedBy, released.ClaimedUntil));
    }

    [Fact]
    public async Task Cancel_and_replay_leave_a_live_claim_so_nobody_else_sends_the_delivery_until_its_holder_lets_go()
    {
        var (receiver, endpointId) = await Endpoint();
        var until = Live();
        // "holder" has the attempt on the wire.
        var id = await Delivery(endpointId, "holder", until);

        await Client.PostOk($"/api/v1/messages/{id}/cancel", new { }, HttpStatusCode.OK);
        var cancelled = await Row(id);
        Assert.Equal((DeliveryStatus.Cancelled, "holder", (DateTimeOffset?)until), (cancelled.Status, cancelled.ClaimedBy, cancelled.ClaimedUntil));

        await Client.PostOk($"/api/v1/messages/{id}/replay", new { }, HttpStatusCode.Accepted);
        var replayed = await Row(id);
        Assert.Equal((DeliveryStatus.Pending, "holder", (DateTimeOffset?)until), (replayed.Status, replayed.ClaimedBy, replayed.ClaimedUntil));
        // Pending and due, but held: this instance's engine leaves it alone.
        await receiver.AssertStillAsync(0, milliseconds: 500);

        // The holder's attempt comes back failed: recorded, let go of, and sent again on the retry schedule.
        await Recorder.RecordAsync("holder", await Claimed(id), Answered(500), CancellationToken.None);
        var recorded = await Row(id);
        Assert.Equal((DeliveryStatus.Pending, 1, (string?)null), (recorded.Status, recorded.Attempts, recorded.ClaimedBy));
        App.Clock.Advance(TimeSpan.FromSeconds(10));
        await receiver.WaitForAsync(1);
        await App.WaitForDelivery(Client, replayed.MessageId, endpointId, d => (string)d["status"]! == "succeeded");
        await receiver.AssertStillAsync(1);
    }

    [Fact]
    public async Task An_attempt_that_returns_after_a_cancel_is_not_logged_and_its_holder_lets_go_of_the_claim()
    {
        var (_, endpointId) = await Endpoint();
        var id = await Delivery(endpointId, "holder", Live());
        await Client.PostOk($"/api/v1/messages/{id}/cancel", new { }, HttpStatusCode.OK);

        await Recorder.RecordAsync("holder", await Claimed(id), Answered(200), CancellationToken.None);

        var row = await Row(id);
        Assert.Equal((DeliveryStatus.Cancelled, 0, (string?)null, (DateTimeOffset?)null), (row.Status, row.Attempts, row.ClaimedBy, row.ClaimedUntil));
        Assert.Equal(0, await Logged(id));
    }

    [Fact]
    public async Task Disabling_and_recovering_an_endpoint_leave_the_claims_of_its_deliveries_with_their_holders()
    {
        var (receiver, endpointId) = await Endpoint();
        var until = Live();
        var id = await Delivery(endpointId, "holder", until);

        await Client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/disable", new { }, HttpStatusCode.OK);
        var failed = await Row(id);
        Assert.Equal((DeliveryStatus.Failed, "holder", (DateTimeOffset?)until), (failed.Status, failed.ClaimedBy, failed.ClaimedUntil));

        await Client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/enable", new { }, HttpStatusCode.OK);
        await Client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/recover", new { since = failed.CreatedAt }, HttpStatusCode.OK);
        var recovered = await Row(id);
        Assert.Equal((DeliveryStatus.Pending, "holder", (DateTimeOffset?)until), (recovered.Status, recovered.ClaimedBy, recovered.ClaimedUntil));
        await receiver.AssertStillAsync(0, milliseconds: 500);
    }

    [Fact]
    public async Task A_test_message_to_a_receiver_slower_than_the_lease_is_sent_once()
    {
        var (receiver, endpointId) = await Endpoint();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.Respond = (_, _) =>
        {
            arrived.TrySetResult();
            return new Reply(Delay: TimeSpan.FromSeconds(1.5));
        };

        var sending = Client.PostAsJsonAsync($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = EventTypes.ReferralVoided });
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
        // While the receiver takes its time, a whole lease passes: the test's hold outlasts it, as nothing renews it.
        App.Clock.Advance(App.Services.GetRequiredService<IOptions<WebhookOptions>>().Value.ClaimLease + TimeSpan.FromSeconds(1));
        var answer = await sending;

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        await receiver.AssertStillAsync(1, milliseconds: 2500);
    }

    /// <summary>
    /// A second engine, not started as a hosted service, on the shared database: it holds what it is handed, and sends
    /// one delivery at a time.
    /// </summary>
    private DeliveryEngine Engine(string instanceId)
    {
        var services = App.Services;
        var options = services.GetRequiredService<IOptions<WebhookOptions>>().Value;
        return new DeliveryEngine(services.GetRequiredService<IServiceScopeFactory>(), services.GetRequiredService<DeliverySender>(),
            services.GetRequiredService<DeliveryRecorder>(), services.GetRequiredService<OutboxSignal>(),
            services.GetRequiredService<Referloop.Email.EmailOutbox>(), App.Clock,
            Options.Create(new WebhookOptions
            {
                InstanceId = instanceId,
                MaxConcurrency = 1,
                MaxConcurrencyPerEndpoint = 1,
                Timeout = options.Timeout,
                ClaimLease = options.ClaimLease,
                PollInterval = options.PollInterval,
            }),
            NullLogger<DeliveryEngine>.Instance);
    }

    /// <summary>Three deliveries handed to <paramref name="engine"/>: the first goes on the wire (to a slow receiver), two wait.</summary>
    private async Task<List<string>> HandThree(DeliveryEngine engine, Receiver receiver, string endpointId, DateTimeOffset until)
    {
        var slow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.Respond = (n, _) =>
        {
            slow.TrySetResult();
            return new Reply(Delay: n == 1 ? TimeSpan.FromSeconds(1.5) : TimeSpan.Zero);
        };
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await Delivery(endpointId, engine.InstanceId, until));
        }
        var claimed = new List<ClaimedDelivery>();
        foreach (var id in ids)
        {
            claimed.Add(await Claimed(id));
        }
        engine.HandOver(new FannedOut(claimed, 0));
        await slow.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return ids;
    }

    [Fact]
    public async Task Stopping_hands_back_only_the_waiting_deliveries_and_an_attempt_on_the_wire_keeps_its_claim()
    {
        var (receiver, endpointId) = await Endpoint();
        using var engine = Engine("stopping");
        var until = Live();
        // Claimed under this instance id by an earlier life, and not held now: not this stop's to hand back.
        var unheld = await Delivery(endpointId, "stopping", until);
        var ids = await HandThree(engine, receiver, endpointId, until);

        await engine.StopAsync(CancellationToken.None);

        var onTheWire = await Row(ids[0]);
        Assert.Equal(("stopping", (DateTimeOffset?)until), (onTheWire.ClaimedBy, onTheWire.ClaimedUntil));
        Assert.Equal(("stopping", (DateTimeOffset?)until), ((await Row(unheld)).ClaimedBy, (await Row(unheld)).ClaimedUntil));
        foreach (var waiting in ids.Skip(1))
        {
            // Free to claim at once: this test server's own engine may already have taken it.
            Assert.NotEqual("stopping", (await Row(waiting)).ClaimedBy);
        }

        // Each of the three is sent once: the one on the wire by the stopping engine, the others by this server's.
        await receiver.WaitForAsync(3);
        foreach (var id in ids)
        {
            var row = await App.WaitForDelivery(Client, (await Row(id)).MessageId, endpointId, d => (string)d["status"]! == "succeeded");
            Assert.Single(row["attempts"]!.AsArray());
        }
        await receiver.AssertStillAsync(3);
    }

    [Fact]
    public async Task Lease_renewal_drops_a_waiting_delivery_cancelled_meanwhile_and_keeps_the_one_on_the_wire()
    {
        var (receiver, endpointId) = await Endpoint();
        using var engine = Engine("renewing");
        var until = Live();
        var ids = await HandThree(engine, receiver, endpointId, until);

        await Client.PostOk($"/api/v1/messages/{ids[0]}/cancel", new { }, HttpStatusCode.OK);
        await Client.PostOk($"/api/v1/messages/{ids[1]}/cancel", new { }, HttpStatusCode.OK);
        await engine.RenewLeasesOnceAsync(CancellationToken.None);

        // The one on the wire keeps its (renewed) claim though cancelled; the cancelled waiting one is let go of unsent.
        var onTheWire = await Row(ids[0]);
        Assert.Equal((DeliveryStatus.Cancelled, "renewing"), (onTheWire.Status, onTheWire.ClaimedBy));
        Assert.NotNull(onTheWire.ClaimedUntil);
        var dropped = await Row(ids[1]);
        Assert.Equal((DeliveryStatus.Cancelled, (string?)null), (dropped.Status, dropped.ClaimedBy));

        // The first attempt returns (not logged: cancelled), then only the third goes.
        await receiver.WaitForAsync(2);
        var third = await App.WaitForDelivery(Client, (await Row(ids[2])).MessageId, endpointId, d => (string)d["status"]! == "succeeded");
        Assert.Single(third["attempts"]!.AsArray());
        await receiver.AssertStillAsync(2);
        Assert.Equal(0, await Logged(ids[1]));
        Assert.Null((await Row(ids[0])).ClaimedBy);
    }
}
