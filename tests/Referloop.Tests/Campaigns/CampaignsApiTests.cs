using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Referloop.Tests.Support;

namespace Referloop.Tests.Campaigns;

public class CampaignsApiTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task Creates_a_campaign_with_its_full_rule_set_and_returns_it_as_stored()
    {
        var created = await _client.PostOk("/api/v1/campaigns", Api.SpringCampaign);

        Assert.StartsWith("cmp_", (string)created["id"]!);
        Assert.Equal("Spring referral", (string)created["name"]!);
        Assert.Equal("active", (string)created["status"]!);
        Assert.Equal(5, (int)created["goalConversions"]!);
        Assert.StartsWith("pk_", (string)created["publishableKey"]!);
        Assert.Equal("http://referloop.test/r/{code}", (string)created["shareUrlPattern"]!);

        var fraud = created["fraud"]!;
        Assert.Equal("block", (string)fraud["selfReferral"]!);
        Assert.Equal("allow", (string)fraud["sameIp"]!);
        Assert.Equal("203.0.113.7", (string)fraud["blockedIps"]![0]!);
        Assert.Equal(20, (int)fraud["maxReferralsPerHour"]!);

        var rules = created["rewards"]!.AsArray();
        Assert.Equal(3, rules.Count);
        Assert.All(rules, rule => Assert.StartsWith("rule_", (string)rule!["id"]!));
        Assert.Equal(5, (int)rules[0]!["limits"]!["perMonth"]!);
        Assert.Equal("Free T-shirt", (string)rules[1]!["tiers"]![1]!["incentive"]!["description"]!);
        Assert.Equal("welcome10", (string)rules[2]!["incentive"]!["pool"]!);

        var fetched = await _client.GetOk($"/api/v1/campaigns/{created["id"]}");
        Assert.Equal(created.ToJsonString(), fetched.ToJsonString());
    }

    [Fact]
    public async Task Omitted_settings_take_documented_defaults()
    {
        var created = await _client.PostOk("/api/v1/campaigns", new { name = "Minimal", landingUrl = "https://shop.example.com" });

        Assert.Equal(30, (int)created["attributionWindowDays"]!);
        Assert.Equal(0, (int)created["holdingPeriodDays"]!);
        Assert.Equal("auto", (string)created["approval"]!);
        Assert.True((bool)created["allowRewardsOnAutoApproved"]!);
        Assert.Empty(created["rewards"]!.AsArray());
        Assert.Equal("block", (string)created["fraud"]!["selfReferral"]!);
    }

    [Fact]
    public async Task Fraud_checks_accept_block_flag_allow_as_well_as_booleans()
    {
        var created = await _client.PostOk("/api/v1/campaigns", new
        {
            name = "Flags",
            landingUrl = "https://shop.example.com",
            fraud = new { selfReferral = "flag", sameIp = "block", disposableEmail = false, couponCycling = "ALLOW" },
        });

        Assert.Equal("flag", (string)created["fraud"]!["selfReferral"]!);
        Assert.Equal("block", (string)created["fraud"]!["sameIp"]!);
        Assert.Equal("allow", (string)created["fraud"]!["disposableEmail"]!);
        Assert.Equal("allow", (string)created["fraud"]!["couponCycling"]!);
    }

    [Fact]
    public async Task Invalid_campaign_names_every_bad_field_and_its_rule()
    {
        var response = await _client.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "",
            landingUrl = "javascript:alert(1)",
            attributionWindowDays = 0,
            holdingPeriodDays = -1,
            approval = "sometimes",
            goalConversions = 0,
            fraud = new { blockedIps = new[] { "not-an-ip" }, maxReferralsPerHour = 0 },
            rewards = new object[]
            {
                new { recipient = "everyone", trigger = "converted", kind = "standard", incentive = new { type = "rebate", amount = -5, currency = "dollars" } },
                new { recipient = "advocate", trigger = "converted", kind = "milestone", tiers = new object[]
                {
                    new { referrals = 5, incentive = new { type = "other", description = "Mug" } },
                    new { referrals = 3, incentive = new { type = "discount_coupon" } },
                } },
                new { recipient = "friend", trigger = "event", kind = "goal", incentive = new { type = "other" } },
            },
        });

        var problem = await response.AssertValidationProblem(
            "name", "landingUrl", "attributionWindowDays", "holdingPeriodDays", "approval", "goalConversions",
            "fraud.blockedIps[0]", "fraud.maxReferralsPerHour",
            "rewards[0].recipient", "rewards[0].incentive.amount", "rewards[0].incentive.currency",
            "rewards[1].tiers[1].referrals", "rewards[1].tiers[1].incentive.pool",
            "rewards[2].event", "rewards[2].incentive.description");
        Assert.Contains("between 1 and 365", (string)problem["errors"]!["attributionWindowDays"]![0]!);
        Assert.Contains("advocate, friend, both", (string)problem["errors"]!["rewards[0].recipient"]![0]!);
    }

    [Fact]
    public async Task Null_block_lists_are_refused_naming_the_field()
    {
        var response = await _client.PostAsync("/api/v1/campaigns", new StringContent(
            """{"name": "Nulls", "landingUrl": "https://shop.example.com", "fraud": {"blockedEmails": null, "blockedIps": null}}""",
            System.Text.Encoding.UTF8, "application/json"));

        await response.AssertValidationProblem("fraud.blockedEmails", "fraud.blockedIps");
    }

    [Fact]
    public async Task A_milestone_rule_needs_tiers_and_a_goal_rule_needs_a_goal()
    {
        var response = await _client.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Rules",
            landingUrl = "https://shop.example.com",
            rewards = new object[]
            {
                new { recipient = "advocate", trigger = "converted", kind = "milestone" },
                new { recipient = "advocate", trigger = "converted", kind = "goal", incentive = new { type = "rebate", amount = 5, currency = "EUR" } },
                new { recipient = "advocate", trigger = "invited", kind = "standard", tiers = Array.Empty<object>(), incentive = new { type = "other", description = "Hat" }, limits = new { perMonth = 10, total = 2 } },
            },
        });

        await response.AssertValidationProblem("rewards[0].tiers", "rewards[1].goal", "rewards[2].tiers", "rewards[2].limits.perMonth");
    }

    [Fact]
    public async Task Json_of_the_wrong_shape_is_a_400_naming_the_field()
    {
        var wrongType = await _client.PostAsync("/api/v1/campaigns", new StringContent(
            """{"name":"x","landingUrl":"https://a.example","attributionWindowDays":"thirty"}""", Encoding.UTF8, "application/json"));
        await wrongType.AssertValidationProblem("attributionWindowDays");

        var badFraudAction = await _client.PostAsync("/api/v1/campaigns", new StringContent(
            """{"name":"x","landingUrl":"https://a.example","fraud":{"sameIp":"maybe"}}""", Encoding.UTF8, "application/json"));
        var problem = await badFraudAction.AssertValidationProblem("fraud.sameIp");
        Assert.Contains("\"flag\"", (string)problem["errors"]!["fraud.sameIp"]![0]!);

        var broken = await _client.PostAsync("/api/v1/campaigns", new StringContent("{oops", Encoding.UTF8, "application/json"));
        await broken.AssertValidationProblem("body");
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_a_415_problem()
    {
        var response = await _client.PostAsync("/api/v1/campaigns", new StringContent("name=x", Encoding.UTF8, "text/plain"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("application/json", (string)(await response.ReadJson())["detail"]!);
    }

    [Fact]
    public async Task Update_replaces_settings_and_keeps_given_rule_ids()
    {
        var id = await _client.CreateCampaign();
        var response = await _client.PutAsJsonAsync($"/api/v1/campaigns/{id}", new
        {
            name = "Summer referral",
            landingUrl = "https://shop.example.com/summer",
            approval = "manual",
            holdingPeriodDays = 14,
            rewards = new object[]
            {
                new { id = "summer-rebate", recipient = "both", trigger = "converted", kind = "standard", incentive = new { type = "rebate", amount = 7.5, currency = "eur" } },
            },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var updated = await response.ReadJson();
        Assert.Equal("Summer referral", (string)updated["name"]!);
        Assert.Equal("manual", (string)updated["approval"]!);
        Assert.Equal(14, (int)updated["holdingPeriodDays"]!);
        var rule = updated["rewards"]![0]!;
        Assert.Equal("summer-rebate", (string)rule["id"]!);
        Assert.Equal("EUR", (string)rule["incentive"]!["currency"]!);
        Assert.Equal(7.5m, (decimal)rule["incentive"]!["amount"]!);
    }

    [Fact]
    public async Task Update_validates_like_create()
    {
        var id = await _client.CreateCampaign();
        var response = await _client.PutAsJsonAsync($"/api/v1/campaigns/{id}", new { name = "", landingUrl = "https://a.example" });
        await response.AssertValidationProblem("name");
    }

    [Fact]
    public async Task Pause_resume_and_archive_move_the_status_and_archive_is_final()
    {
        var id = await _client.CreateCampaign();

        Assert.Equal("paused", (string)(await _client.PostOk($"/api/v1/campaigns/{id}/pause", new { }, HttpStatusCode.OK))["status"]!);
        Assert.Equal("active", (string)(await _client.PostOk($"/api/v1/campaigns/{id}/resume", new { }, HttpStatusCode.OK))["status"]!);
        Assert.Equal("archived", (string)(await _client.PostOk($"/api/v1/campaigns/{id}/archive", new { }, HttpStatusCode.OK))["status"]!);

        var resume = await _client.PostAsync($"/api/v1/campaigns/{id}/resume", null);
        Assert.Equal(HttpStatusCode.Conflict, resume.StatusCode);
        Assert.Contains("archived", (string)(await resume.ReadJson())["detail"]!);
    }

    [Fact]
    public async Task Unknown_campaign_is_a_404_problem()
    {
        foreach (var response in new[]
        {
            await _client.GetAsync("/api/v1/campaigns/cmp_missing"),
            await _client.PostAsync("/api/v1/campaigns/cmp_missing/pause", null),
            await _client.PutAsJsonAsync("/api/v1/campaigns/cmp_missing", new { name = "x", landingUrl = "https://a.example" }),
        })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task List_pages_with_a_cursor_and_filters_by_status()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await _client.CreateCampaign(new { name = $"Paged {i}", landingUrl = "https://shop.example.com" }));
        }
        await _client.PostAsync($"/api/v1/campaigns/{ids[2]}/pause", null);

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _client.GetOk($"/api/v1/campaigns?limit=2{(cursor is null ? "" : $"&cursor={cursor}")}");
            Assert.True(page["data"]!.AsArray().Count <= 2);
            seen.AddRange(page["data"]!.AsArray().Select(c => (string)c!["id"]!));
            cursor = (string?)page["nextCursor"];
        } while (cursor is not null);

        Assert.Equal(seen.Distinct().Count(), seen.Count);
        Assert.Equal(ids, seen.Where(ids.Contains));
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);

        var paused = await _client.GetOk("/api/v1/campaigns?status=paused");
        Assert.Contains(ids[2], paused["data"]!.AsArray().Select(c => (string)c!["id"]!));
        Assert.All(paused["data"]!.AsArray(), c => Assert.Equal("paused", (string)c!["status"]!));
    }

    [Fact]
    public async Task List_rejects_bad_query_parameters()
    {
        (await _client.GetAsync("/api/v1/campaigns?limit=0")).EnsureStatus(HttpStatusCode.BadRequest);
        await (await _client.GetAsync("/api/v1/campaigns?limit=1000")).AssertValidationProblem("limit");
        await (await _client.GetAsync("/api/v1/campaigns?cursor=%%%")).AssertValidationProblem("cursor");
        await (await _client.GetAsync("/api/v1/campaigns?status=deleted")).AssertValidationProblem("status");
    }
}
