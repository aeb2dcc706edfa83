using System.Globalization;
using System.Text.Json;

namespace Referloop.Webhooks;

/// <summary>
/// The human-readable <c>message</c> of the JSON envelope ("Bob Stone joined Spring referral, invited by Ann Lee."),
/// for receivers that post it to a chat or a log as it is (seeds/004). It is written from the message's data each
/// time the body is built, never stored: the same data gives the same bytes on every retry, and data with its
/// personal fields redacted gives a message without them.
/// </summary>
public static class WebhookMessageText
{
    public static string Describe(string type, string data)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data);
        }
        catch (JsonException)
        {
            return $"A {type} event.";
        }
        using (document)
        {
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? Describe(type, document.RootElement)
                : $"A {type} event.";
        }
    }

    private static string Describe(string type, JsonElement d)
    {
        var campaign = Text(Field(d, "campaign"), "name");
        var inCampaign = campaign is null ? "" : $" in {campaign}";
        var advocate = Person(Field(d, "advocate"));
        var friend = Person(Field(d, "friend"));
        var referral = $"{advocate}'s referral of {friend}";
        switch (type)
        {
            case EventTypes.ParticipantJoined:
                var joined = Person(Field(d, "participant"));
                var to = campaign is null ? "" : $" {campaign}";
                return Field(d, "referredBy") is { ValueKind: JsonValueKind.Object } referredBy
                    ? $"{joined} joined{to}, invited by {Person(referredBy)}."
                    : $"{joined} joined{to}.";
            case EventTypes.ReferralCreated:
                return $"{advocate} referred {friend}{(campaign is null ? "" : $" to {campaign}")}.";
            case EventTypes.ReferralQualified:
                return $"{friend}, referred by {advocate}, qualified{inCampaign}.";
            case EventTypes.ReferralApproved:
                return $"{referral} was approved{inCampaign}.";
            case EventTypes.ReferralVoided:
                return $"{referral} was voided{inCampaign}{Because(Text(d, "reason"))}.";
            case EventTypes.ReferralFlagged:
                var risk = Text(Field(d, "review"), "riskScore");
                return $"{referral} waits for review{inCampaign}{(risk is null ? "" : $" (risk {risk})")}.";
            case EventTypes.RewardIssued:
            case EventTypes.RewardBlocked:
            case EventTypes.RewardRevoked:
                var reward = Field(d, "reward");
                var recipient = Text(reward, "recipient") == "friend" ? friend : advocate;
                var incentive = Incentive(Field(reward, "incentive"));
                return type switch
                {
                    EventTypes.RewardIssued => $"{recipient} received a reward{incentive} for the referral of {friend}{inCampaign}.",
                    EventTypes.RewardRevoked => $"{recipient}'s reward{incentive} for the referral of {friend} was taken back" +
                        $"{(Text(reward, "status") == "clawback_required" ? " after it was paid" : "")}{inCampaign}{Because(Text(reward, "reason"))}.",
                    _ => $"{recipient}'s reward{incentive} for the referral of {friend} was blocked{inCampaign}{Because(Text(reward, "reason"))}.",
                };
            case EventTypes.Conversion:
                var order = Text(d, "orderID");
                var referee = Text(d, "referee_name") ?? Text(d, "referee_email") ?? "A referred friend";
                var referrer = Text(d, "referrer_name") ?? Text(d, "referrer_email") ?? "a participant";
                return $"{referee} converted{(order is null ? "" : $" (order {order})")}, referred by {referrer}.";
            case EventTypes.ParticipantRiskChanged:
                return $"{Person(Field(d, "participant"))}'s fraud risk changed from {Text(d, "oldLevel") ?? "unknown"} to {Text(d, "newLevel") ?? "unknown"}{inCampaign}.";
            case EventTypes.EndpointDisabled:
                var disabled = Text(Field(d, "endpoint"), "url") ?? "A webhook endpoint";
                return $"Webhook endpoint {disabled} was disabled{Because(Text(d, "detail") ?? Text(d, "reason"))}".TrimEnd('.') + ".";
            case EventTypes.MessageAttemptExhausted:
                var failed = Text(Field(d, "message"), "type") ?? "A";
                var attempts = Text(d, "attempts");
                return $"A {failed} message could not be delivered to {Text(Field(d, "endpoint"), "url") ?? "an endpoint"}" +
                    $"{(attempts is null ? "" : $" after {attempts} attempts")}{Because(Text(d, "lastError"))}".TrimEnd('.') + ".";
            default:
                return $"A {type} event{inCampaign}.";
        }
    }

    private static string Because(string? reason) => reason is null ? "" : $": {reason}";

    private static string Person(JsonElement? person) =>
        Text(person, "name") ?? Text(person, "email") ?? Text(person, "id") ?? "someone";

    private static string Incentive(JsonElement? incentive)
    {
        var amount = Text(incentive, "amount");
        var kind = Text(incentive, "type");
        if (amount is null)
        {
            return kind is null ? "" : $" ({kind})";
        }
        var currency = Text(incentive, "currency");
        return $" ({(kind is null ? "" : kind + " of ")}{amount}{(currency is null ? "" : " " + currency)})";
    }

    /// <summary>The member <paramref name="name"/> of an object, if there is one.</summary>
    private static JsonElement? Field(JsonElement? node, string name) =>
        node is { ValueKind: JsonValueKind.Object } parent && parent.TryGetProperty(name, out var value) ? value : null;

    private static string? Text(JsonElement? node, string name)
    {
        var text = Field(node, name) switch
        {
            { ValueKind: JsonValueKind.String } value => value.GetString(),
            { ValueKind: JsonValueKind.Number } value when value.TryGetDecimal(out var n) => n.ToString(CultureInfo.InvariantCulture),
            { ValueKind: JsonValueKind.True } => "true",
            { ValueKind: JsonValueKind.False } => "false",
            _ => null,
        };
        return string.IsNullOrWhiteSpace(text) ? null : text.Trim();
    }
}
