using System.Text.Json.Nodes;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>The JSON envelope's <c>message</c> (seeds/004): one sentence a person can read, written from the data.</summary>
public class WebhookMessageTextTests
{
    public static TheoryData<string, string> Examples => new()
    {
        { EventTypes.ParticipantJoined, "Bob Stone joined Spring referral, invited by Ann Lee." },
        { EventTypes.ReferralCreated, "Ann Lee referred Bob Stone to Spring referral." },
        { EventTypes.ReferralQualified, "Bob Stone, referred by Ann Lee, qualified in Spring referral." },
        { EventTypes.ReferralApproved, "Ann Lee's referral of Bob Stone was approved in Spring referral." },
        { EventTypes.ReferralVoided, "Ann Lee's referral of Bob Stone was voided in Spring referral: chargeback." },
        { EventTypes.RewardIssued, "Ann Lee received a reward (rebate of 10 USD) for the referral of Bob Stone in Spring referral." },
        { EventTypes.Conversion, "Bob Stone converted (order ORD-1001), referred by Ann Lee." },
        { EventTypes.EndpointDisabled, "Webhook endpoint https://crm.example.com was disabled: The receiver answered 410 Gone." },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public void The_json_envelope_says_what_happened_in_one_sentence(string type, string message)
    {
        var envelope = JsonNode.Parse(WebhookPayload.JsonEnvelope(new OutboxMessage
        {
            Id = "msg_example",
            Type = type,
            Data = ExamplePayloads.Data[type],
            CreatedAt = DateTimeOffset.UnixEpoch,
        }))!;

        Assert.Equal(message, (string)envelope["message"]!);
        Assert.Equal(["type", "timestamp", "message", "data"], envelope.AsObject().Select(p => p.Key));
    }

    [Fact]
    public void Every_event_type_has_its_own_sentence()
    {
        foreach (var type in EventTypes.All)
        {
            Assert.DoesNotContain($"A {type} event", WebhookMessageText.Describe(type, ExamplePayloads.Data[type]));
        }
    }

    [Fact]
    public void The_message_holds_only_what_the_data_holds()
    {
        var data = JsonNode.Parse(ExamplePayloads.Data[EventTypes.ParticipantJoined])!;
        data["participant"]!["name"] = null;
        data["participant"]!["email"] = null;
        data["referredBy"]!["name"] = null;

        var message = WebhookMessageText.Describe(EventTypes.ParticipantJoined, data.ToJsonString());

        Assert.Equal("par_0196f1c3d2057e1f9a4b6c8d0e2f4a61 joined Spring referral, invited by ann@example.com.", message);
        Assert.Equal("A custom.thing event.", WebhookMessageText.Describe("custom.thing", "not json"));
    }
}
