using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Rewards;

/// <summary>Create-coupon URLs go through the same SSRF guard as webhooks: private networks are not allowed here.</summary>
public class CreateCouponGuardTests(GuardedApp app) : IClassFixture<GuardedApp>, IAsyncLifetime
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private Receiver _internal = null!;

    /// <summary>An internal service on loopback that would hand out a code to whoever asks.</summary>
    public async Task InitializeAsync()
    {
        _internal = await Receiver.StartAsync();
        _internal.Respond = (_, _) => new Reply(Body: """{"code": "INTERNAL-SECRET"}""");
    }

    public async Task DisposeAsync() => await _internal.DisposeAsync();

    private static object[] CouponRule(string pool) =>
        [new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool } }];

    [Theory]
    [InlineData("http://127.0.0.1:{port}/coupons")]
    [InlineData("http://[::127.0.0.1]:{port}/coupons")]
    [InlineData("http://[::ffff:127.0.0.1]:{port}/coupons")]
    [InlineData("http://[64:ff9b::7f00:1]:{port}/coupons")]
    [InlineData("http://localhost:{port}/coupons")]
    [InlineData("http://intranet.example.com/coupons")]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    public async Task An_internal_create_coupon_url_is_refused_when_a_pool_is_created(string template)
    {
        var campaign = await _admin.CreateCampaign();
        var url = template.Replace("{port}", _internal.Port.ToString());

        var response = await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10", new { createCouponUrl = url });

        var problem = await response.AssertValidationProblem("createCouponUrl");
        Assert.StartsWith("must not point at", (string)problem["errors"]!["createCouponUrl"]![0]!);
        Assert.Contains("Webhooks:AllowPrivateNetworks", (string)problem["errors"]!["createCouponUrl"]![0]!);
        (await _admin.GetAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10")).EnsureStatus(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_internal_create_coupon_url_is_refused_when_a_pool_is_updated()
    {
        var campaign = await _admin.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/welcome10";
        (await _admin.PutAsJsonAsync(url, new { createCouponUrl = "https://not-yet.example.com/coupons" })).EnsureStatus(HttpStatusCode.Created);

        var response = await _admin.PutAsJsonAsync(url, new { createCouponUrl = _internal.Url("/coupons") });

        await response.AssertValidationProblem("createCouponUrl");
        Assert.Equal("https://not-yet.example.com/coupons", (string)(await _admin.GetOk(url))["createCouponUrl"]!);
    }

    [Fact]
    public async Task A_pool_url_that_points_at_loopback_gives_a_public_sign_up_no_code_and_the_service_no_request()
    {
        var (campaign, publishableKey) = await _admin.Campaign(CouponRule("welcome10"));
        (await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10", new { })).EnsureStatus(HttpStatusCode.Created);
        // As stored before saving checked it, or by hand: the check at connect time is what stops it.
        await app.WithDb(db => db.CouponPools.Where(p => p.CampaignId == campaign)
            .ExecuteUpdateAsync(p => p.SetProperty(x => x.CreateCouponUrl, _internal.Url("/coupons"))));

        await AssertSignUpGetsNoCode(campaign, publishableKey, "loopback-pool@example.net");
    }

    [Fact]
    public async Task A_pool_url_whose_name_turns_to_loopback_after_saving_gives_a_public_sign_up_no_code_and_the_service_no_request()
    {
        var (campaign, publishableKey) = await _admin.Campaign(CouponRule("welcome10"));
        app.Dns.Answers["coupons.rebind.example.com"] = [IPAddress.Parse("93.184.215.14")];
        (await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10",
            new { createCouponUrl = $"http://coupons.rebind.example.com:{_internal.Port}/coupons" })).EnsureStatus(HttpStatusCode.Created);

        app.Dns.Answers["coupons.rebind.example.com"] = [IPAddress.Loopback];

        await AssertSignUpGetsNoCode(campaign, publishableKey, "rebound-pool@example.net");
    }

    /// <summary>A friend signs up from the shop page (publishable key only) and would get a coupon.</summary>
    private async Task AssertSignUpGetsNoCode(string campaign, string publishableKey, string email)
    {
        var (_, code) = await _admin.Advocate(campaign, email: $"ann-{email}");
        using var signUp = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = JsonContent.Create(new { type = "signup", email, referralCode = code }),
        };
        signUp.Headers.Add("X-Referloop-Key", publishableKey);

        var response = await app.CreateAnonymousClient().SendAsync(signUp);

        response.EnsureStatus(HttpStatusCode.Accepted);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("INTERNAL-SECRET", text);
        var reward = Assert.Single(JsonNode.Parse(text)!["rewards"]!.AsArray())!;
        // The pool is asked after the event is answered: the browser learns that a coupon is on its way, not where from.
        Assert.Equal("pending", (string?)reward["status"]);
        Assert.Equal("awaiting_coupon", (string?)reward["pendingReason"]);
        Assert.Null(reward["incentive"]!["couponCode"]);
        Assert.DoesNotContain("127.0.0.1", text);
        var rewardId = (string)reward["id"]!;
        // A refused address is not asked again: the reward is blocked after the first try.
        await EngineKit.Eventually(async () => (string?)(await _admin.GetOk($"/api/v1/rewards/{rewardId}"))["status"] == "blocked",
            "the reward is blocked");
        var blocked = await _admin.GetOk($"/api/v1/rewards/{rewardId}");
        Assert.Contains("could not be reached", (string?)blocked["reason"]);
        Assert.Null(blocked["incentive"]!["couponCode"]);
        Assert.Empty(_internal.Requests);
        Assert.False(await app.WithDb(db => db.Coupons.AnyAsync(c => c.Code == "INTERNAL-SECRET")));
    }
}
