using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Rewards;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Rewards;

public class CouponAllocationTests(PrivateNetworkApp app) : IClassFixture<PrivateNetworkApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    /// <summary>Each call in its own scope, so each has its own context and connection, as separate instances would.</summary>
    private async Task<CouponAllocation> Allocate(string campaign, string pool, string rewardId, string participantId = "par_friend")
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<CouponAllocator>()
            .AllocateAsync(campaign, pool, rewardId, participantId, CancellationToken.None);
    }

    private async Task<string> CampaignWithCodes(string pool, int count)
    {
        var campaign = await _client.CreateCampaign();
        if (count > 0)
        {
            await _client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/{pool}/coupons",
                new { codes = Enumerable.Range(1, count).Select(i => $"CODE-{i:000}") }, HttpStatusCode.OK);
        }
        return campaign;
    }

    private async Task<string> SetCreateCouponUrl(string campaign, string pool, string? url)
    {
        var response = await _client.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/{pool}", new { createCouponUrl = url });
        var body = await response.ReadJson();
        return body["secret"]?.ToString() ?? (string)(await _client.PostOk(
            $"/api/v1/campaigns/{campaign}/coupon-pools/{pool}/rotate-secret", new { }, HttpStatusCode.OK))["secret"]!;
    }

    [Fact]
    public async Task Fifty_codes_and_eighty_parallel_rewards_give_fifty_distinct_codes_and_thirty_clear_failures()
    {
        var campaign = await CampaignWithCodes("welcome10", 50);

        var results = await Task.WhenAll(Enumerable.Range(0, 80).Select(i =>
            Task.Run(() => Allocate(campaign, "welcome10", $"rwd_{i:000}", $"par_{i:000}"))));

        var codes = results.Where(r => r.Succeeded).Select(r => r.Code!).ToList();
        Assert.Equal(50, codes.Count);
        Assert.Equal(50, codes.Distinct().Count());
        var failures = results.Where(r => !r.Succeeded).ToList();
        Assert.Equal(30, failures.Count);
        Assert.All(failures, f => Assert.Equal("coupon pool 'welcome10' is empty", f.FailureReason));

        var pool = await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10");
        Assert.Equal(0, (int)pool["available"]!);
        Assert.Equal(50, (int)pool["allocated"]!);
        var stored = await app.WithDb(db => db.Coupons.AsNoTracking()
            .Where(c => db.CouponPools.Any(p => p.Id == c.PoolId && p.CampaignId == campaign)).ToListAsync());
        Assert.Equal(codes.Order(), stored.Select(c => c.Code).Order());
        var byReward = results.Select((r, i) => (r.Code, Reward: $"rwd_{i:000}", Participant: $"par_{i:000}")).Where(x => x.Code is not null);
        Assert.Equal(byReward.Select(x => (x.Code, x.Reward, x.Participant)).Order(),
            stored.Select(c => ((string?)c.Code, c.AllocatedToRewardId!, c.AllocatedToParticipantId!)).Order());
        Assert.All(stored, c => Assert.Equal(app.Clock.GetUtcNow(), c.AllocatedAt));
    }

    [Fact]
    public async Task Allocating_twice_for_one_reward_returns_the_same_code_even_concurrently()
    {
        var campaign = await CampaignWithCodes("once", 10);

        var first = await Allocate(campaign, "once", "rwd_same");
        var again = await Allocate(campaign, "once", "rwd_same");
        var racing = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Allocate(campaign, "once", "rwd_race"))));

        Assert.StartsWith("CODE-", first.Code);
        Assert.Equal(first.Code, again.Code);
        Assert.Single(racing.Select(r => r.Code).Distinct());
        Assert.NotNull(racing[0].Code);
        Assert.Equal(8, (int)(await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/once"))["available"]!);
    }

    [Fact]
    public async Task A_claim_inside_the_callers_transaction_rolls_back_with_it_and_the_create_coupon_url_is_never_called_there()
    {
        await using var receiver = await CouponReceiver.StartAsync();
        var campaign = await CampaignWithCodes("tx", 2);
        receiver.Secret = await SetCreateCouponUrl(campaign, "tx", receiver.Url);
        var taken = await Allocate(campaign, "tx", "rwd_tx_taken");

        await using (var scope = app.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Referloop.Storage.ReferloopDb>();
            var allocator = scope.ServiceProvider.GetRequiredService<CouponAllocator>();
            await using var transaction = await db.Database.BeginTransactionAsync();

            var last = await allocator.AllocateAsync(campaign, "tx", "rwd_tx_last", "par_x", CancellationToken.None);
            Assert.StartsWith("CODE-", last.Code);
            Assert.NotEqual(taken.Code, last.Code);
            // The pool is empty now: the URL would have to be asked, which is refused with the transaction open.
            await Assert.ThrowsAsync<InvalidOperationException>(() =>
                allocator.AllocateAsync(campaign, "tx", "rwd_tx_empty", "par_y", CancellationToken.None));
            Assert.True(await db.Coupons.AnyAsync(c => c.AllocatedToRewardId == "rwd_tx_last"));
            await transaction.RollbackAsync();
        }

        Assert.Empty(receiver.Requests);
        Assert.Equal(1, (int)(await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/tx"))["available"]!);
        Assert.False(await app.WithDb(db => db.Coupons.AnyAsync(c => c.AllocatedToRewardId == "rwd_tx_last")));
    }

    [Fact]
    public async Task A_pool_that_does_not_exist_fails_with_a_reason()
    {
        var campaign = await CampaignWithCodes("unused", 0);

        var allocation = await Allocate(campaign, "welcome10", "rwd_missing");

        Assert.False(allocation.Succeeded);
        Assert.Equal("coupon pool 'welcome10' does not exist: upload codes to it or give it a create-coupon URL", allocation.FailureReason);
    }

    [Fact]
    public async Task When_the_pool_runs_dry_the_create_coupon_url_supplies_signed_codes()
    {
        await using var receiver = await CouponReceiver.StartAsync();
        var campaign = await CampaignWithCodes("welcome10", 50);
        receiver.Secret = await SetCreateCouponUrl(campaign, "welcome10", receiver.Url);

        var results = await Task.WhenAll(Enumerable.Range(0, 80).Select(i =>
            Task.Run(() => Allocate(campaign, "welcome10", $"rwd_dry_{i:000}", $"par_{i:000}"))));

        Assert.All(results, r => Assert.True(r.Succeeded, r.FailureReason));
        var codes = results.Select(r => r.Code!).ToList();
        Assert.Equal(80, codes.Distinct().Count());
        Assert.Equal(50, codes.Count(c => c.StartsWith("CODE-")));
        Assert.Equal(30, codes.Count(c => c.StartsWith("MINTED-")));
        Assert.Empty(receiver.Errors);
        Assert.Equal(30, receiver.Requests.Count);
        var mintedRewards = results.Select((r, i) => (r.Code!, Reward: $"rwd_dry_{i:000}")).Where(x => x.Item1.StartsWith("MINTED-"));
        Assert.Equal(mintedRewards.Select(x => x.Reward).Order(), receiver.Requests.Select(r => (string)r["rewardId"]!).Order());
        var request = receiver.Requests.First();
        Assert.Equal(campaign, (string)request["campaignId"]!);
        Assert.Equal("welcome10", (string)request["pool"]!);
        Assert.StartsWith("par_", (string)request["participantId"]!);

        // Minted codes are stored as allocated, so they count as stock handed out and are never handed out again.
        var pool = await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10");
        Assert.Equal(80, (int)pool["allocated"]!);
        var minted = await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons?status=allocated&limit=200");
        Assert.Equal(30, minted["data"]!.AsArray().Count(c => (string)c!["source"]! == "createCouponUrl"));

        // Asking again for a reward that got a minted code does not call the merchant again.
        var mintedReward = results.Select((r, i) => (r, i)).First(x => x.r.Code!.StartsWith("MINTED-"));
        Assert.Equal(mintedReward.r.Code, (await Allocate(campaign, "welcome10", $"rwd_dry_{mintedReward.i:000}")).Code);
        Assert.Equal(30, receiver.Requests.Count);
    }

    [Theory]
    [InlineData(500, "answered 500")]
    [InlineData(302, "answered 302 (redirects are not followed)")]
    [InlineData(200, "answered 200 without a usable code")]
    public async Task A_failing_create_coupon_url_blocks_with_a_clear_reason(int status, string expected)
    {
        await using var receiver = await CouponReceiver.StartAsync();
        receiver.Answer = status;
        var campaign = await CampaignWithCodes("welcome10", 0);
        receiver.Secret = await SetCreateCouponUrl(campaign, "welcome10", receiver.Url);

        var allocation = await Allocate(campaign, "welcome10", "rwd_fail");

        Assert.False(allocation.Succeeded);
        Assert.StartsWith($"coupon pool 'welcome10' is empty and the create-coupon URL {expected}", allocation.FailureReason);
        Assert.Single(receiver.Requests);
        Assert.Equal(0, receiver.Redirected);
    }

    [Fact]
    public async Task An_unreachable_create_coupon_url_blocks_with_a_clear_reason()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var campaign = await CampaignWithCodes("welcome10", 0);
        await SetCreateCouponUrl(campaign, "welcome10", $"http://127.0.0.1:{port}/coupons");

        var allocation = await Allocate(campaign, "welcome10", "rwd_unreachable");

        Assert.False(allocation.Succeeded);
        Assert.StartsWith("coupon pool 'welcome10' is empty and the create-coupon URL could not be reached", allocation.FailureReason);
    }

    [Fact]
    public async Task A_minted_code_the_pool_already_holds_is_refused()
    {
        await using var receiver = await CouponReceiver.StartAsync();
        receiver.FixedCode = "CODE-001";
        var campaign = await CampaignWithCodes("welcome10", 1);
        receiver.Secret = await SetCreateCouponUrl(campaign, "welcome10", receiver.Url);
        Assert.Equal("CODE-001", (await Allocate(campaign, "welcome10", "rwd_first")).Code);
        Assert.Empty(receiver.Requests);

        var allocation = await Allocate(campaign, "welcome10", "rwd_second");

        Assert.Equal("coupon pool 'welcome10' is empty and the create-coupon URL answered the code 'CODE-001', which the pool already holds",
            allocation.FailureReason);
    }

    [Fact]
    public async Task After_a_rotation_create_coupon_calls_carry_both_signatures_until_the_overlap_ends()
    {
        await using var receiver = await CouponReceiver.StartAsync();
        var campaign = await CampaignWithCodes("overlap", 0);
        var old = await SetCreateCouponUrl(campaign, "overlap", receiver.Url);
        receiver.Secret = old;

        var rotated = await _client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/overlap/rotate-secret",
            new { overlapHours = 2 }, HttpStatusCode.OK);
        var current = (string)rotated["secret"]!;
        Assert.Equal(app.Clock.GetUtcNow().AddHours(2), DateTimeOffset.Parse((string)rotated["previousSecretExpiresAt"]!));
        Assert.NotNull((await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/overlap"))["previousSecretExpiresAt"]);

        // A receiver still on the old secret accepts the call during the overlap, and so does one on the new secret.
        Assert.True((await Allocate(campaign, "overlap", "rwd_overlap_1")).Succeeded);
        Assert.Empty(receiver.Errors);
        var (header, id, timestamp, body) = receiver.Signed.Last();
        Assert.Equal([WebhookSignature.Sign(current, id, timestamp, body), WebhookSignature.Sign(old, id, timestamp, body)],
            header.Split(' '));

        app.Clock.Advance(TimeSpan.FromHours(2));
        receiver.Secret = current;
        Assert.True((await Allocate(campaign, "overlap", "rwd_overlap_2")).Succeeded);
        Assert.Empty(receiver.Errors);
        (header, id, timestamp, body) = receiver.Signed.Last();
        Assert.Equal(WebhookSignature.Sign(current, id, timestamp, body), header);
        Assert.Null((await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/overlap"))["previousSecretExpiresAt"]);

        // overlapHours 0 ends the old secret at once.
        var immediate = await _client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/overlap/rotate-secret",
            new { overlapHours = 0 }, HttpStatusCode.OK);
        Assert.Null(immediate["previousSecretExpiresAt"]);
        receiver.Secret = (string)immediate["secret"]!;
        Assert.True((await Allocate(campaign, "overlap", "rwd_overlap_3")).Succeeded);
        Assert.Single(receiver.Signed.Last().Header.Split(' '));
        Assert.Empty(receiver.Errors);
    }

    /// <summary>A merchant's create-coupon endpoint on loopback that checks the Standard Webhooks signature.</summary>
    private sealed class CouponReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _minted;

        private CouponReceiver(WebApplication app) => _app = app;

        public string Url => _app.Urls.First() + "/coupons";
        public string? Secret { get; set; }
        public int Answer { get; set; } = 200;
        public string? FixedCode { get; set; }
        public int Redirected;
        public ConcurrentBag<JsonObject> Requests { get; } = [];
        public ConcurrentBag<string> Errors { get; } = [];
        public ConcurrentQueue<(string Header, string Id, long Timestamp, string Body)> Signed { get; } = [];

        public static async Task<CouponReceiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var receiver = new CouponReceiver(app);
            app.MapGet("/elsewhere", () => Interlocked.Increment(ref receiver.Redirected));
            app.MapPost("/coupons", receiver.Handle);
            await app.StartAsync();
            return receiver;
        }

        private async Task<IResult> Handle(HttpRequest request)
        {
            var body = await new StreamReader(request.Body).ReadToEndAsync();
            string id = request.Headers["webhook-id"]!, timestamp = request.Headers["webhook-timestamp"]!;
            Signed.Enqueue((request.Headers["webhook-signature"].ToString(), id, long.Parse(timestamp), body));
            var expected = WebhookSignature.Sign(Secret!, id, long.Parse(timestamp), body);
            if (request.Headers["webhook-signature"].ToString().Split(' ').All(s => s != expected))
            {
                Errors.Add($"bad signature for {body}");
            }
            if (request.ContentType?.StartsWith("application/json") != true)
            {
                Errors.Add($"content type {request.ContentType}");
            }
            Requests.Add(JsonNode.Parse(body)!.AsObject());
            return Answer switch
            {
                200 when FixedCode is not null => Results.Json(new { code = FixedCode }),
                200 when Requests.Count > 0 && body.Contains("rwd_fail") => Results.Json(new { coupon = "nope" }),
                200 => Results.Json(new { code = $"MINTED-{Interlocked.Increment(ref _minted):000}" }),
                302 => Results.Redirect("/elsewhere"),
                _ => Results.StatusCode(Answer),
            };
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
