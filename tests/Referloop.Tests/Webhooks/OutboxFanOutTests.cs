using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// A writer writes an outbox message alone, in the transaction of the change it reports; the delivery engine fans it
/// out to the subscribed endpoints once it is committed (never before, never if it rolls back), exactly once. The
/// event path fans its messages out in its own transaction while the engine has room.
/// </summary>
public class OutboxFanOutTests(WebhookApp app) : EndpointTestClass(app)
{
    private async Task<(Receiver Receiver, string EndpointId)> Endpoint()
    {
        var receiver = await Receiver.StartAsync();
        Receivers.Add(receiver);
        var created = await App.CreateEndpoint(Client, new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
        var id = (string)created["id"]!;
        Endpoints.Add(id);
        return (receiver, id);
    }

    [Fact]
    public async Task The_message_is_written_alone_and_fanned_out_and_sent_once_its_transaction_commits()
    {
        var (receiver, endpointId) = await Endpoint();

        var messageId = await App.WithDb(async db =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            var message = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 1 }, App.Clock.GetUtcNow());
            await db.SaveChangesAsync();

            // Inside the transaction, before the commit: one outbox row, undispatched, and no delivery yet.
            Assert.False(await db.WebhookDeliveries.AnyAsync(d => d.MessageId == message.Id));
            Assert.Null(await db.Outbox.AsNoTracking().Where(m => m.Id == message.Id).Select(m => m.DispatchedAt).SingleAsync());
            await receiver.AssertStillAsync(0, milliseconds: 300);

            await transaction.CommitAsync();
            return message.Id;
        });

        var request = await receiver.WaitForAsync(1);
        Assert.Equal(messageId, request.Header("webhook-id"));
        await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        await receiver.AssertStillAsync(1);
        var delivery = await App.WithDb(db => db.WebhookDeliveries.AsNoTracking().SingleAsync(d => d.MessageId == messageId));
        Assert.Equal(endpointId, delivery.EndpointId);
        // Recorded: the lease it was created with is let go of.
        Assert.Null(delivery.ClaimedBy);
        Assert.NotNull(await App.WithDb(db => db.Outbox.AsNoTracking().Where(m => m.Id == messageId).Select(m => m.DispatchedAt).SingleAsync()));
    }

    [Fact]
    public async Task The_event_path_fans_its_messages_out_in_its_own_transaction_and_hands_them_over_after_the_commit()
    {
        var (receiver, endpointId) = await Endpoint();
        var engine = App.Services.GetRequiredService<DeliveryEngine>();
        var writer = App.Services.GetRequiredService<OutboxWriter>();

        var (messageId, fannedOut) = await App.WithDb(async db =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            var now = App.Clock.GetUtcNow();
            var message = Outbox.Create(EventTypes.ReferralCreated, null, new { sequence = 6 }, now);
            var fannedOut = await writer.InsertAsync(db, [message], now, CancellationToken.None, engine);

            // Inside the transaction: the message is written dispatched, with its delivery leased to this instance.
            Assert.NotNull(fannedOut);
            Assert.Equal(now, await db.Outbox.AsNoTracking().Where(m => m.Id == message.Id).Select(m => m.DispatchedAt).SingleAsync());
            var delivery = await db.WebhookDeliveries.AsNoTracking().SingleAsync(d => d.MessageId == message.Id);
            Assert.Equal(endpointId, delivery.EndpointId);
            Assert.Equal(engine.InstanceId, delivery.ClaimedBy);
            Assert.Equal([delivery.Id], fannedOut.Claimed.Select(c => c.Id));
            await transaction.CommitAsync();
            return (message.Id, fannedOut);
        });

        // Leased here and dispatched: neither the engine's fan-out nor its claims take it; the writer hands it over.
        await receiver.AssertStillAsync(0, milliseconds: 300);
        engine.HandOver(fannedOut);
        var request = await receiver.WaitForAsync(1);
        Assert.Equal(messageId, request.Header("webhook-id"));
        await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        await receiver.AssertStillAsync(1);
    }

    [Fact]
    public async Task A_transaction_that_rolls_back_sends_nothing()
    {
        var (receiver, _) = await Endpoint();

        var messageId = await App.WithDb(async db =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            var message = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 2 }, App.Clock.GetUtcNow());
            await db.SaveChangesAsync();
            await transaction.RollbackAsync();
            return message.Id;
        });

        await receiver.AssertStillAsync(0, milliseconds: 600);
        Assert.False(await App.WithDb(db => db.WebhookDeliveries.AnyAsync(d => d.MessageId == messageId)));
    }

    [Fact]
    public async Task A_transaction_disposed_without_commit_sends_nothing_when_the_next_one_on_the_connection_commits()
    {
        var (receiver, _) = await Endpoint();

        var messageId = await App.WithDb(async db =>
        {
            string id;
            await using (var abandoned = await db.Database.BeginTransactionAsync())
            {
                id = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 4 }, App.Clock.GetUtcNow()).Id;
                await db.SaveChangesAsync();
                // Disposed as an exception on the way would: neither committed nor rolled back by hand.
            }
            db.ChangeTracker.Clear();
            // Npgsql hands the next transaction of the connection the same transaction object.
            await using var next = await db.Database.BeginTransactionAsync();
            await db.Participants.AnyAsync();
            await next.CommitAsync();
            return id;
        });

        await receiver.AssertStillAsync(0, milliseconds: 600);
        Assert.False(await App.WithDb(db => db.Outbox.AnyAsync(m => m.Id == messageId)));
    }

    [Fact]
    public async Task An_endpoint_created_between_two_transactions_of_one_context_receives_the_second_ones_message()
    {
        var (first, _) = await Endpoint();
        var second = await Receiver.StartAsync();
        Receivers.Add(second);

        var messageId = await App.WithDb(async db =>
        {
            await using (var transaction = await db.Database.BeginTransactionAsync())
            {
                Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 5 }, App.Clock.GetUtcNow());
                await db.SaveChangesAsync();
                await transaction.CommitAsync();
            }
            // The engine may take the first message only after the endpoint exists: what keeps it from that endpoint is
            // that the endpoint was created after it (WebhookEndpoint.Wants), which the fake clock shows once it moves.
            App.Clock.Advance(TimeSpan.FromMilliseconds(1));
            var created = await App.CreateEndpoint(Client, new { url = second.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
            Endpoints.Add((string)created["id"]!);
            await using (var transaction = await db.Database.BeginTransactionAsync())
            {
                var message = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 6 }, App.Clock.GetUtcNow());
                await db.SaveChangesAsync();
                await transaction.CommitAsync();
                return message.Id;
            }
        });

        Assert.Equal(messageId, (await second.WaitForAsync(1)).Header("webhook-id"));
        await first.WaitForAsync(2);
        await second.AssertStillAsync(1);
    }

    [Fact]
    public async Task A_failed_save_fans_out_afresh_when_it_is_retried()
    {
        var (receiver, endpointId) = await Endpoint();
        var taken = await App.Publish(EventTypes.ReferralCreated);
        await receiver.WaitForAsync(1);

        var messageId = await App.WithDb(async db =>
        {
            var message = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 3 }, App.Clock.GetUtcNow());
            // A second message under an id already taken makes the whole save fail.
            var clash = new OutboxMessage { Id = taken, Type = EventTypes.ReferralCreated, Data = "{}", CreatedAt = App.Clock.GetUtcNow() };
            db.Outbox.Add(clash);
            await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());

            db.Entry(clash).State = EntityState.Detached;
            await db.SaveChangesAsync();
            return message.Id;
        });

        var request = await receiver.WaitForAsync(2);
        Assert.Equal(messageId, request.Header("webhook-id"));
        await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        Assert.Equal(1, await App.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.MessageId == messageId)));
        await receiver.AssertStillAsync(2);
    }

    [Fact]
    public async Task A_failed_save_inside_a_transaction_fans_out_afresh_when_it_is_retried_in_it()
    {
        // A failed save (undone to its savepoint) must leave the message to the retry, which writes it once, and the
        // engine fans it out once.
        var (receiver, endpointId) = await Endpoint();
        var taken = await App.Publish(EventTypes.ReferralCreated);
        await receiver.WaitForAsync(1);

        var messageId = await App.WithDb(async db =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync();
            var message = Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence = 7 }, App.Clock.GetUtcNow());
            var clash = new OutboxMessage { Id = taken, Type = EventTypes.ReferralCreated, Data = "{}", CreatedAt = App.Clock.GetUtcNow() };
            db.Outbox.Add(clash);
            await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
            Assert.False(await db.Outbox.AnyAsync(m => m.Id == message.Id));

            db.Entry(clash).State = EntityState.Detached;
            await db.SaveChangesAsync();
            await receiver.AssertStillAsync(1, milliseconds: 300);
            await transaction.CommitAsync();
            return message.Id;
        });

        var request = await receiver.WaitForAsync(2);
        Assert.Equal(messageId, request.Header("webhook-id"));
        await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        Assert.Equal(1, await App.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.MessageId == messageId)));
        await receiver.AssertStillAsync(2);
    }
}
