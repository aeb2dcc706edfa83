using System.Net;
using System.Net.Http.Json;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Rewards;

public class RewardRuleCombinationTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    public static TheoryData<string, string, string> Combinations()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var recipient in new[] { "advocate", "friend", "both" })
        {
            foreach (var trigger in new[] { "invited", "converted", "event" })
            {
                foreach (var kind in new[] { "standard", "milestone", "goal" })
                {
                    data.Add(recipient, trigger, kind);
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public async Task Each_recipient_trigger_and_kind_rewards_its_first_referral(string recipient, string trigger, string kind)
    {
        var rule = new Dictionary<string, object>
        {
            ["recipient"] = recipient,
            ["trigger"] = trigger,
            ["kind"] = kind,
        };
        if (trigger == "event")
        {
            rule["event"] = "trial_started";
        }
        if (kind == "milestone")
        {
            rule["tiers"] = new object[] { new { referrals = 1, incentive = Rebate(7) } };
        }
        else
        {
            rule["incentive"] = Rebate(7);
        }
        if (kind == "goal")
        {
            rule["goal"] = 1;
        }
        var (campaign, _) = await _admin.Campaign([rule]);
        var (advocateId, code) = await _admin.Advocate(campaign);

        var signup = await _admin.Track(campaign, "signup", "combo@example.net", code);
        var custom = await _admin.Track(campaign, "trial_started", "combo@example.net");
        var purchase = await _admin.Track(campaign, "purchase", "combo@example.net", orderId: "C-1", purchaseValue: 30);
        var friendId = (string)signup["referral"]!["friendId"]!;

        var earnedAt = trigger switch { "invited" => signup, "event" => custom, _ => purchase };
        var expected = recipient == "both" ? new[] { "advocate", "friend" } : [recipient];
        Assert.Equal(expected, earnedAt.Rewards().Select(r => (string)r!["recipient"]!).Order());
        var rewards = await _admin.RewardList($"campaignId={campaign}");
        Assert.Equal(expected.Length, rewards.Count);
        Assert.All(rewards, r =>
        {
            Assert.Equal("issued", (string?)r!["status"]);
            Assert.Equal(trigger, (string?)r["trigger"]);
            Assert.Equal(kind, (string?)r["kind"]);
            Assert.Equal(7m, (decimal)r["incentive"]!["amount"]!);
            Assert.Equal((string)r["recipient"]! == "advocate" ? advocateId : friendId, (string?)r["participantId"]);
        });
    }

    [Fact]
    public async Task A_negative_minimum_purchase_value_is_rejected_naming_the_field()
    {
        var response = await _admin.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Bad minimum",
            landingUrl = "https://shop.example.com",
            rewards = new object[] { new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(1), minPurchaseValue = -5 } },
        });

        await response.AssertValidationProblem("rewards[0].minPurchaseValue");
        Assert.NotEqual(HttpStatusCode.Created, response.StatusCode);
    }
}
