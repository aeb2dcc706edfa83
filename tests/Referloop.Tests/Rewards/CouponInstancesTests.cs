using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Rewards;

/// <summary>A server whose database a second server instance can share; outbound calls may reach loopback receivers.</summary>
public sealed class SharedDatabaseApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            return settings;
        }
    }

    /// <summary>Another Referloop instance on the same database, with the same clock.</summary>
    public WebApplicationFactory<Program> SecondInstance() => new SecondServer(Settings, Clock);

    /// <summary>A client of <paramref name="instance"/> with the admin key.</summary>
    public static HttpClient CreateAdminClient(WebApplicationFactory<Program> instance)
    {
        var client = instance.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", AdminKey);
        return client;
    }

    private sealed class SecondServer(IDictionary<string, string?> settings, TimeProvider clock) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }
            builder.ConfigureTestServices(services => services.AddSingleton(clock));
        }
    }
}

public class CouponInstancesTests(SharedDatabaseApp app) : IClassFixture<SharedDatabaseApp>
{
    [Fact]
    public async Task Two_server_instances_on_one_database_never_hand_out_a_code_twice()
    {
        await using var second = app.SecondInstance();
        var client = app.CreateAdminClient();
        var campaign = await client.CreateCampaign();
        await client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons",
            new { codes = Enumerable.Range(1, 50).Select(i => $"SHARED-{i:000}") }, HttpStatusCode.OK);
        IServiceProvider[] instances = [app.Services, second.Services];

        var results = await Task.WhenAll(Enumerable.Range(0, 80).Select(i => Task.Run(async () =>
        {
            await using var scope = instances[i % 2].CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<CouponAllocator>()
                .AllocateAsync(campaign, "welcome10", $"rwd_{i:000}", $"par_{i:000}", CancellationToken.None);
        })));

        var codes = results.Where(r => r.Succeeded).Select(r => r.Code!).ToList();
        Assert.Equal(50, codes.Count);
        Assert.Equal(50, codes.Distinct().Count());
        Assert.All(results.Where(r => !r.Succeeded), r => Assert.Equal("coupon pool 'welcome10' is empty", r.FailureReason));
    }

    [PostgresFact]
    public async Task A_reward_whose_pools_free_codes_another_transaction_holds_waits_for_one_instead_of_being_blocked()
    {
        var client = app.CreateAdminClient();
        var (campaign, _) = await client.Campaign(
            [new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "held" } }]);
        await client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/held/coupons", new { codes = new[] { "HELD-1", "HELD-2" } },
            HttpStatusCode.OK);
        var (_, code) = await client.Advocate(campaign, "held-ann@example.com");

        // Another transaction holds every free code of the pool, as a batch handing them out does until it commits.
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var holder = await db.Database.BeginTransactionAsync();
        await db.Database.ExecuteSqlAsync($"""
            SELECT 1 FROM coupons WHERE "PoolId" IN (SELECT "Id" FROM coupon_pools WHERE "CampaignId" = {campaign}) FOR UPDATE
            """);

        var reward = (await client.Track(campaign, "signup", "held-bob@example.net", code)).Rewards()[0]!;

        Assert.Equal("pending", (string?)reward["status"]);
        Assert.Equal("awaiting_coupon", (string?)reward["pendingReason"]);
        var rewardId = (string)reward["id"]!;
        Task<Reward> Stored() => app.WithDb(d => d.Rewards.AsNoTracking().FirstAsync(r => r.Id == rewardId));
        // The coupon request meets the same held codes: it asks again later rather than calling the pool empty.
        await EngineKit.Eventually(async () => await Stored() is { CouponAttempts: 1, CouponDueAt: { } due }
            && due - app.Clock.GetUtcNow() == CouponRequests.Backoff(1), "the request is scheduled again");

        await holder.RollbackAsync();
        await holder.DisposeAsync();
        app.Clock.Advance(CouponRequests.Backoff(1));
        app.Services.GetRequiredService<CouponRequests>().Wake();

        await EngineKit.Eventually(async () => await Stored() is { Status: RewardStatus.Issued, CouponCode: "HELD-1" }, "the reward has its code");
    }

    [Fact]
    public async Task Two_server_instances_on_one_database_ask_the_create_coupon_url_once_per_reward()
    {
        await using var merchant = await Receiver.StartAsync();
        var minted = 0;
        merchant.Respond = (_, _) => new Reply(Body: $$"""{"code": "TWO-{{Interlocked.Increment(ref minted):000}}"}""",
            Delay: TimeSpan.FromMilliseconds(100));
        await using var second = app.SecondInstance();
        var admin = app.CreateAdminClient();
        var secondAdmin = SharedDatabaseApp.CreateAdminClient(second);
        var (campaign, _) = await admin.Campaign(
            [new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome" } }]);
        (await admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome", new { createCouponUrl = merchant.Url("/coupons") }))
            .EnsureStatus(HttpStatusCode.Created);
        var (_, code) = await admin.Advocate(campaign);
        CouponRequests[] services = [app.Services.GetRequiredService<CouponRequests>(), second.Services.GetRequiredService<CouponRequests>()];

        // Each instance is woken by its own events; both also sweep at the same time, as after a restart.
        var events = Enumerable.Range(0, 20).Select(i => (i % 2 == 0 ? admin : secondAdmin)
            .Track(campaign, "signup", $"friend-{i:00}@example.net", code));
        var sweeps = Enumerable.Range(0, 6).Select(i => services[i % 2].RunOnceAsync(CancellationToken.None));
        var outcomes = await Task.WhenAll(events);
        await Task.WhenAll(sweeps);
        await Task.WhenAll(services.Select(s => s.RunOnceAsync(CancellationToken.None)));
        var rewardIds = outcomes.Select(o => (string)o.Rewards()[0]!["id"]!).ToList();

        await EngineKit.Eventually(async () => (await admin.RewardList($"campaignId={campaign}&status=issued&limit=200")).Count == 20,
            "every reward is issued");
        Assert.Equal(20, merchant.Requests.Count);
        Assert.Equal(rewardIds.Order(), merchant.Requests.Select(r => (string)JsonNode.Parse(r.Body)!["rewardId"]!).Order());
        var issued = await admin.RewardList($"campaignId={campaign}&status=issued&limit=200");
        Assert.Equal(20, issued.Select(r => (string)r!["incentive"]!["couponCode"]!).Distinct().Count());
        Assert.Equal(20, (await app.Messages(campaign)).Count(m => m.Type == "reward.issued"));
    }
}
