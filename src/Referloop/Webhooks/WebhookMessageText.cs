using System.Globalization;
using System.Text.Json.Nodes;

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
        JsonObject? d;
        try
        {
            d = JsonNode.Parse(data) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            d = null;
        }
        return d is null ? $"A {type} event." : Describe(type, d);
    }

    private static string Describe(string type, JsonObject d)
    {
        var campaign = Text(d["campaign"], "name");
        var inCampaign = campaign is null ? "" : $" in {campaign}";
        var advocate = Person(d["advocate"]);
        var friend = Person(d["friend"]);
        var referral = $"{advocate}'s referral of {friend}";
        switch (type)
        {
            case EventTypes.ParticipantJoined:
                var joined = Person(d["participant"]);
                var to = campaign is null ? "" : $" {campaign}";
                return d["referredBy"] is JsonObject referredBy
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
                var risk = Text(d["review"], "riskScore");
                return $"{referral} waits for review{inCampaign}{(risk is null ? "" : $" (risk {risk})")}.";
            case EventTypes.RewardIssued:
            case EventTypes.RewardBlocked:
            case EventTypes.RewardRevoked:
                var reward = d["reward"];
                var recipient = Text(reward, "recipient") == "friend" ? friend : advocate;
                var incentive = Incentive(reward?["incentive"]);
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
                return $"{Person(d["participant"])}'s fraud risk changed from {Text(d, "oldLevel") ?? "unknown"} to {Text(d, "newLevel") ?? "unknown"}{inCampaign}.";
            case EventTypes.EndpointDisabled:
                var disabled = Text(d["endpoint"], "url") ?? "A webhook endpoint";
                return $"Webhook endpoint {disabled} was disabled{Because(Text(d, "detail") ?? Text(d, "reason"))}".TrimEnd('.') + ".";
            case EventTypes.MessageAttemptExhausted:
                var failed = Text(d["message"], "type") ?? "A";
                var attempts = Text(d, "attempts");
                return $"A {failed} message could not be delivered to {Text(d["endpoint"], "url") ?? "an endpoint"}" +
                    $"{(attempts is null ? "" : $" after {attempts} attempts")}{Because(Text(d, "lastError"))}".TrimEnd('.') + ".";
            default:
                return $"A {type} event{inCampaign}.";
        }
    }

    private static string Because(string? reason) => reason is null ? "" : $": {reason}";

    private static string Person(JsonNode? person) =>
        Text(person, "name") ?? Text(person, "email") ?? Text(person, "id") ?? "someone";

    private static string Incentive(JsonNode? incentive)
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

    private static string? Text(JsonNode? node, string name)
    {
        var value = (node as JsonObject)?[name] as JsonValue;
        if (value is null)
        {
            return null;
        }
        var text = value.TryGetValue<string>(out var s) ? s
            : value.TryGetValue<decimal>(out var n) ? n.ToString(CultureInfo.InvariantCulture)
            : value.TryGetValue<bool>(out var b) ? (b ? "true" : "false")
            : null;
        return string.IsNullOrWhiteSpace(text) ? null : text.Trim();
    }
}
