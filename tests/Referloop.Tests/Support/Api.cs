using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Referloop.Tests.Support;

/// <summary>Small helpers that keep tests about behaviour, not plumbing.</summary>
public static class Api
{
    public static async Task<JsonObject> ReadJson(this HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();

    public static async Task<JsonObject> PostOk(this HttpClient client, string url, object body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await client.PostAsJsonAsync(url, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"POST {url} answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public static async Task<JsonObject> GetOk(this HttpClient client, string url)
    {
        var response = await client.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {url} answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Asserts a 400 problem-details answer whose errors name <paramref name="fields"/>.</summary>
    public static async Task<JsonObject> AssertValidationProblem(this HttpResponseMessage response, params string[] fields)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 400, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        var errors = problem["errors"]!.AsObject();
        foreach (var field in fields)
        {
            Assert.True(errors.ContainsKey(field), $"expected an error for '{field}', got: {errors.ToJsonString()}");
        }
        return problem;
    }

    public static readonly object SpringCampaign = JsonSerializer.Deserialize<JsonObject>("""
        {
          "name": "Spring referral",
          "landingUrl": "https://shop.example.com/welcome",
          "attributionWindowDays": 30,
          "holdingPeriodDays": 0,
          "approval": "auto",
          "allowRewardsOnAutoApproved": true,
          "goalConversions": 5,
          "fraud": { "selfReferral": true, "sameIp": false, "disposableEmail": true, "couponCycling": true,
                     "blockedEmails": ["*@spam.example"], "blockedIps": ["203.0.113.7"], "maxReferralsPerHour": 20 },
          "rewards": [
            { "recipient": "advocate", "trigger": "converted", "kind": "standard",
              "incentive": { "type": "rebate", "amount": 10, "currency": "USD" },
              "limits": { "perMonth": 5, "total": 50 } },
            { "recipient": "advocate", "trigger": "converted", "kind": "milestone",
              "tiers": [ { "referrals": 3, "incentive": { "type": "rebate", "amount": 25, "currency": "USD" } },
                         { "referrals": 5, "incentive": { "type": "other", "description": "Free T-shirt" } } ] },
            { "recipient": "friend", "trigger": "invited", "kind": "standard",
              "incentive": { "type": "discount_coupon", "pool": "welcome10" } }
          ]
        }
        """)!;

    /// <summary>An auto-approved campaign with one advocate reward, a $10 rebate per conversion, and no limits.</summary>
    public static object AutoApprovedRebateCampaign(string name) => new
    {
        name,
        landingUrl = "https://shop.example.com/welcome",
        approval = "auto",
        rewards = new object[]
        {
            new { recipient = "advocate", trigger = "converted", kind = "standard",
                  incentive = new { type = "rebate", amount = 10, currency = "USD" } },
        },
    };

    public static async Task<string> CreateCampaign(this HttpClient client, object? body = null) =>
        (string)(await client.PostOk("/api/v1/campaigns", body ?? SpringCampaign))["id"]!;
}

public static class ResponseAssertions
{
    public static void EnsureStatus(this HttpResponseMessage response, HttpStatusCode expected) =>
        Assert.True(response.StatusCode == expected,
            $"expected {(int)expected}, got {(int)response.StatusCode}: {response.Content.ReadAsStringAsync().Result}");
}
