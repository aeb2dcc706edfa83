using System.Net;
using Referloop.Email;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>The ids of what <see cref="DashboardSeed.FillAsync"/> created, for tests to open their pages.</summary>
public sealed record SeededDashboard(
    string Campaign, string OtherCampaign, string Advocate, string AdvocateCode, string Friend,
    string PendingReferral, string QualifiedReferral, string ApprovedReferral, string VoidedReferral, string FlaggedReferral,
    string Endpoint, string DeliveredMessage, string DownEndpoint, string FailedMessage, string Hook);

/// <summary>
/// A dashboard with something on every page: two campaigns with reward rules, advocates and friends, referrals in
/// every status, issued and paid rewards, a coupon pool, a webhook endpoint with a delivered message and a disabled
/// one with a failed message, and an inbound hook with a processed and a rejected request.
/// </summary>
public static class DashboardSeed
{
    private static readonly object[] Rules =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(10), limits = new { perMonth = 5 } },
        new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome10" } },
        new
        {
            recipient = "advocate", trigger = "converted", kind = "milestone",
            tiers = new object[] { new { referrals = 3, incentive = EngineKit.Rebate(25) }, new { referrals = 5, incentive = EngineKit.Other("Free T-shirt") } },
        },
    ];

    /// <summary>An advocate's own sign-up comes from this address, so a friend arriving from it is flagged (same IP).</summary>
    private const string AdvocateIp = "198.51.100.20";

    public static async Task<SeededDashboard> FillAsync(BrowserApp app, Receiver receiver)
    {
        using var admin = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ReferloopApp.AdminKey);

        var (campaign, _) = await admin.Campaign(Rules, new
        {
            name = "Spring referral",
            approval = "manual",
            goalConversions = 5,
            fraud = new { sameIp = "flag", selfReferral = false, disposableEmail = false, couponCycling = true, blockedEmails = new[] { "*@spam.example" } },
        });
        var (otherCampaign, _) = await admin.Campaign([], new { name = "Autumn friends" });
        await admin.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons",
            new { codes = Enumerable.Range(1, 12).Select(i => $"WELCOME-{i:D3}") }, HttpStatusCode.OK);

        var (advocate, code) = await admin.Advocate(campaign, "ann.advocate.with.a.rather.long.address@example.com", "Ann Lee");
        await admin.Track(campaign, "signup", "ann.advocate.with.a.rather.long.address@example.com", ip: AdvocateIp);
        await admin.Advocate(campaign, "cy@example.com", "Cy Park");
        await admin.Advocate(otherCampaign, "dana@example.org", "Dana Fall");

        async Task<string> Referral(string friend, string? orderId = null, string ip = "203.0.113.50")
        {
            var outcome = await admin.Track(campaign, "signup", friend, code, name: friend[..friend.IndexOf('@')], ip: ip);
            if (orderId is not null)
            {
                await admin.Track(campaign, "purchase", friend, orderId: orderId, purchaseValue: 80, ip: ip);
            }
            return (string)outcome["referral"]!["id"]!;
        }
        var pending = await Referral("pending.friend.with.a.long.address@example.net");
        var qualified = await Referral("qualified.friend@example.net", "A-1", "203.0.113.51");
        var approved = await Referral("approved.friend@example.net", "A-2", "203.0.113.52");
        var voided = await Referral("voided.friend@example.net", "A-3", "203.0.113.53");
        var flagged = await Referral("flagged.friend@example.net", ip: AdvocateIp);
        await admin.PostJson($"/api/v1/referrals/{approved}/approve", new { reason = "order A-2 checked" });
        await admin.PostJson($"/api/v1/referrals/{voided}/void", new { reason = "order refunded" });
        var issued = (await admin.RewardList($"referralId={approved}&status=issued")).Select(r => (string)r!["id"]!).First();
        await admin.PostJson($"/api/v1/rewards/{issued}/paid", new { });
        var friend = (string)(await admin.GetOk($"/api/v1/referrals/{qualified}"))["friendId"]!;

        var endpoint = (string)(await admin.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/crm"), description = "CRM", eventTypes = new[] { "referral.approved", "reward.issued" } }))["id"]!;
        var delivered = (string)(await admin.PostOk($"/api/v1/webhook-endpoints/{endpoint}/test", new { eventType = "referral.approved" }, HttpStatusCode.OK))["id"]!;
        var down = (string)(await admin.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/down"), description = "Warehouse", eventTypes = new[] { "conversion" } }))["id"]!;
        var failed = (string)(await admin.PostOk($"/api/v1/webhook-endpoints/{down}/test", new { eventType = "conversion" }, HttpStatusCode.OK))["id"]!;
        // Disabling marks its pending message failed: the log then shows a failure to replay.
        await admin.PostJson($"/api/v1/webhook-endpoints/{down}/disable", new { });

        var hook = await admin.CreateHook(campaign, "stream");
        using var sender = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        await sender.PostJson(hook.Path, """{"email": "john.smith@example.com", "city": "Miami", "countryCode": "US", "productName": "Sneakers"}""");
        await sender.PostRaw(hook.Path, "email=x", "text/plain");

        return new(campaign, otherCampaign, advocate, code, friend, pending, qualified, approved, voided, flagged,
            endpoint, delivered, down, failed, hook.Id);
    }

    /// <summary>
    /// Recorded e-mails of every kind and status for the seeded advocate (the browser servers run with e-mail off, so
    /// the sends are written as the sender would have left them), a failed one with a long SMTP error among them.
    /// </summary>
    public static Task EmailSendsAsync(BrowserApp app, SeededDashboard seed) => app.WithDb(async db =>
    {
        const string to = "ann.advocate.with.a.rather.long.address@example.com";
        var now = app.Clock.GetUtcNow();
        var outcomes = new (string Kind, string Status, string? Subject, string? Error)[]
        {
            (EmailKind.Welcome, EmailStatus.Sent, "Welcome to Spring referral, Ann", null),
            (EmailKind.Reward, EmailStatus.Failed, "You earned a reward: 10 USD",
                "550 5.1.1 <ann.advocate.with.a.rather.long.address@example.com>: Recipient address rejected: User unknown in virtual mailbox table"),
            (EmailKind.Milestone, EmailStatus.Pending, "You reached a milestone in Spring referral", "451 4.3.0 Mail system busy, try again later"),
            (EmailKind.MagicLink, EmailStatus.Skipped, null, "the participant is not an advocate"),
        };
        foreach (var (kind, status, subject, error) in outcomes)
        {
            var send = EmailOutbox.New(seed.Campaign, seed.Advocate, kind, to, now);
            send.Status = status;
            send.Subject = subject;
            send.Attempts = status == EmailStatus.Skipped ? 0 : 1;
            send.LastError = error;
            send.SentAt = status == EmailStatus.Sent ? now : null;
            send.NextAttemptAt = status == EmailStatus.Pending ? now.AddMinutes(1) : now;
            db.Add(send);
        }
        return await db.SaveChangesAsync();
    });

    /// <summary>A receiver that answers 200, and 500 on <c>/down</c>.</summary>
    public static async Task<Receiver> ReceiverAsync()
    {
        var receiver = await Receiver.StartAsync();
        receiver.Respond = (_, request) => request.Path == "/down" ? new Reply(500, "down for maintenance") : new Reply(200, """{"received":true}""");
        return receiver;
    }
}
