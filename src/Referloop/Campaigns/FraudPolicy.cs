using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Referloop.Campaigns;

/// <summary>What a fraud check does when it trips. In JSON, <c>true</c> means block and <c>false</c> allow.</summary>
[JsonConverter(typeof(FraudActionConverter))]
public enum FraudAction
{
    Allow,
    Block,
    Flag,
}

public sealed record FraudPolicy
{
    public FraudAction SelfReferral { get; init; } = FraudAction.Block;
    public FraudAction SameIp { get; init; } = FraudAction.Allow;
    public FraudAction DisposableEmail { get; init; } = FraudAction.Block;
    public FraudAction CouponCycling { get; init; } = FraudAction.Block;

    /// <summary>Exact addresses, <c>*@domain</c> patterns or bare domains.</summary>
    [MaxLength(10_000)]
    public List<string> BlockedEmails { get; init; } = [];

    /// <summary>Single addresses or CIDR ranges, IPv4 or IPv6.</summary>
    [MaxLength(10_000)]
    public List<string> BlockedIps { get; init; } = [];

    /// <summary>Velocity limit: referrals one advocate may bring in any hour; null for no limit.</summary>
    [Range(1, 1_000_000)]
    public int? MaxReferralsPerHour { get; init; }

    /// <summary>
    /// What a purchase or custom event reported from a browser with the publishable key earns. Anyone can send such
    /// a call, so by default it is held for review; server calls (admin key, inbound hooks) are trusted.
    /// </summary>
    public BrowserConversions BrowserConversions { get; init; } = BrowserConversions.Review;
}

/// <summary>The campaign's policy for conversions that a browser reports with the publishable key.</summary>
[JsonConverter(typeof(BrowserConversionsConverter))]
public enum BrowserConversions
{
    /// <summary>Hold the conversion for review: the referral is <c>flagged</c> until a person approves or voids it.</summary>
    Review,

    /// <summary>Treat it like a server call.</summary>
    Accept,

    /// <summary>Record and attribute it, but convert only when the merchant's server reports the same order or event.</summary>
    Confirm,
}

internal sealed class BrowserConversionsConverter : JsonConverter<BrowserConversions>
{
    private const string Rule = "must be \"review\", \"accept\" or \"confirm\".";

    public override BrowserConversions Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType != JsonTokenType.String ? throw new JsonException(Rule) : reader.GetString()?.ToLowerInvariant() switch
        {
            "review" => BrowserConversions.Review,
            "accept" => BrowserConversions.Accept,
            "confirm" => BrowserConversions.Confirm,
            _ => throw new JsonException(Rule),
        };

    public override void Write(Utf8JsonWriter writer, BrowserConversions value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString().ToLowerInvariant());
}

internal sealed class FraudActionConverter : JsonConverter<FraudAction>
{
    public override FraudAction Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.True => FraudAction.Block,
            JsonTokenType.False => FraudAction.Allow,
            JsonTokenType.String => reader.GetString()?.ToLowerInvariant() switch
            {
                "block" => FraudAction.Block,
                "flag" => FraudAction.Flag,
                "allow" => FraudAction.Allow,
                _ => throw new JsonException("must be true, false, \"block\", \"flag\" or \"allow\"."),
            },
            _ => throw new JsonException("must be true, false, \"block\", \"flag\" or \"allow\"."),
        };

    public override void Write(Utf8JsonWriter writer, FraudAction value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value switch
        {
            FraudAction.Block => "block",
            FraudAction.Flag => "flag",
            _ => "allow",
        });
}
