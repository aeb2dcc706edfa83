using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Rewards;

namespace Referloop.Tracking;

/// <summary>The body of <c>POST /api/v1/events</c>. <c>orderID</c> (the seeds' spelling) binds to <c>orderId</c>.</summary>
public sealed partial record TrackEvent : IValidatable
{
    /// <summary>Required with the admin key; with a publishable key the key names the campaign.</summary>
    [StringLength(40)]
    public string? CampaignId { get; init; }

    /// <summary>The campaign's publishable key, for browsers that cannot set the <c>X-Referloop-Key</c> header.</summary>
    [StringLength(100)]
    public string? PublishableKey { get; init; }

    /// <summary>
    /// <c>signup</c>, <c>purchase</c>, <c>refund</c> or <c>chargeback</c> (admin key or inbound hook only: the purchase
    /// with <c>orderId</c> stops counting), or a custom name such as <c>subscription_started</c>.
    /// </summary>
    [Required, RegularExpression(TypeRule)]
    public string? Type { get; init; }

    /// <summary>The friend the event is about; required, except on a refund or chargeback (its order names the friend).</summary>
    [EmailAddress, StringLength(254)]
    public string? Email { get; init; }

    [StringLength(200)]
    public string? Name { get; init; }

    [StringLength(200)]
    public string? OrderId { get; init; }

    [Range(0, 1_000_000_000_000d)]
    public decimal? PurchaseValue { get; init; }

    [RegularExpression(Campaigns.CampaignInput.Currency)]
    public string? Currency { get; init; }

    public string? Ip { get; init; }

    [StringLength(512)]
    public string? UserAgent { get; init; }

    [StringLength(32)]
    public string? ReferralCode { get; init; }

    [StringLength(40)]
    public string? ClickId { get; init; }
    public DateTimeOffset? OccurredAt { get; init; }
    public Dictionary<string, JsonElement>? Properties { get; init; }

    /// <summary>The coupon the friend used, from <c>properties.couponCode</c>: fraud checks look for coupon cycling.</summary>
    public string? CouponCode =>
        Properties is not null && Properties.TryGetValue("couponCode", out var code) && code.ValueKind == JsonValueKind.String
            ? code.GetString()
            : null;

    /// <summary>
    /// Whether <see cref="OccurredAt"/> lies ahead of <paramref name="now"/> by more than clocks differ (5 minutes): such an
    /// event is refused, as attribution measures its window from it.
    /// </summary>
    public bool OccursInTheFuture(DateTimeOffset now) => OccurredAt > now.AddMinutes(5);

    public void Validate(ValidationErrors errors)
    {
        errors.MaxLength("campaignId", CampaignId, 40);
        errors.MaxLength("publishableKey", PublishableKey, 100);
        if (string.IsNullOrWhiteSpace(Type))
        {
            errors.Add("type", "is required: 'signup', 'purchase' or a custom event name.");
        }
        else if (!TypePattern().IsWholeMatch(Type))
        {
            errors.Add("type", "must be 1–64 letters, digits, '_', '-', '.' or ':'.");
        }
        var refund = EventKinds.IsRefund(Type);
        if (string.IsNullOrWhiteSpace(Email))
        {
            if (!refund)
            {
                errors.Add("email", "is required: the friend the event is about.");
            }
        }
        else if (!JoinParticipant.IsEmail(Email))
        {
            errors.Add("email", "must be an email address such as bob@example.net (at most 254 characters).");
        }
        errors.MaxLength("name", Name, 200);
        errors.MaxLength("orderId", OrderId, 200);
        if (refund && string.IsNullOrWhiteSpace(OrderId))
        {
            errors.Add("orderId", "is required on a refund or chargeback: the order whose purchase it takes back.");
        }
        if (PurchaseValue is { } value && (value < 0 || value > 1_000_000_000_000m || decimal.Round(value, 4) != value))
        {
            errors.Add("purchaseValue", "must be between 0 and 1,000,000,000,000 with at most 4 decimals.");
        }
        if (Currency is not null && !CurrencyPattern().IsWholeMatch(Currency))
        {
            errors.Add("currency", "must be a three-letter ISO 4217 code such as USD.");
        }
        // Only an address as written: a zone (fe80::1%eth0) names an interface of the sender's machine, not a client,
        // and the parser takes any text after it (or a port after brackets), which need not fit the column.
        if (Ip is not null && (Ip.Length > 45 || Ip.AsSpan().IndexOfAny('%', '[', '\0') >= 0 || !IPAddress.TryParse(Ip, out _)))
        {
            errors.Add("ip", "must be an IPv4 or IPv6 address, without brackets, a port or a zone (%…).");
        }
        errors.MaxLength("userAgent", UserAgent, 512);
        errors.MaxLength("referralCode", ReferralCode, 32);
        errors.MaxLength("clickId", ClickId, 40);
        if (Properties is { } properties)
        {
            if (properties.Count > 50)
            {
                errors.Add("properties", "must hold at most 50 entries.");
            }
            if (properties.Keys.Any(k => k.Length is 0 or > 64))
            {
                errors.Add("properties", "keys must be 1–64 characters.");
            }
            if (JsonSerializer.Serialize(properties).Length > 16_384)
            {
                errors.Add("properties", "must be at most 16 KiB as JSON.");
            }
            if (properties.TryGetValue("couponCode", out var code) && (code.ValueKind != JsonValueKind.String || code.GetString()!.Length > 200))
            {
                errors.Add("properties.couponCode", "must be a string of at most 200 characters.");
            }
        }
        // The fields kept or looked up as text (PostgreSQL's text refuses a NUL; the others' rules already do); the
        // properties are kept as JSON, where a NUL stays escaped.
        errors.NoNul("campaignId", CampaignId);
        errors.NoNul("publishableKey", PublishableKey);
        errors.NoNul("name", Name);
        errors.NoNul("orderId", OrderId);
        errors.NoNul("userAgent", UserAgent);
        errors.NoNul("referralCode", ReferralCode);
        errors.NoNul("clickId", ClickId);
        errors.NoNul("properties.couponCode", CouponCode);
    }

    private const string TypeRule = "^[A-Za-z0-9_.:-]{1,64}$";

    [GeneratedRegex(TypeRule)]
    private static partial Regex TypePattern();

    [GeneratedRegex(Campaigns.CampaignInput.Currency)]
    private static partial Regex CurrencyPattern();
}

/// <summary>The 202 answer: what the event did.</summary>
public sealed record EventOutcome(
    string EventId,
    bool Duplicate,
    bool Attributed,
    string? AttributedBy,
    string? Reason,
    EventReferral? Referral,
    IReadOnlyList<RewardResponse> Rewards,
    EventConversion? Conversion,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] EventRefund? Refund = null)
{
    /// <summary>What a browser holding only the publishable key may see: no advocate, only the friend's own rewards.</summary>
    public EventOutcome ForBrowser() => this with
    {
        Referral = Referral is null ? null : Referral with { AdvocateId = null, RiskScore = null },
        Rewards = Rewards.Where(r => r.Recipient == Campaigns.RewardRecipient.Friend).Select(ForBrowser).ToList(),
        Conversion = null,
    };

    private static RewardResponse ForBrowser(RewardResponse reward) => reward with { Reason = BrowserRewards.Reason(reward.Reason) };
}

/// <summary>
/// A friend's reward as a browser may see it: a coupon pool's reason (its create-coupon URL, what that answered) is
/// the merchant's business, and so is a reviewer's note on a voided referral: only the reasons every campaign shares
/// are shown.
/// </summary>
file static class BrowserRewards
{
    private static readonly HashSet<string> Shown = [BlockReason.LimitReached, BlockReason.CouponCycling, BlockReason.CriteriaMismatch,
        BlockReason.AutoApprovedNotAllowed, BlockReason.ShareInactive, BlockReason.FraudCheckFailed];

    public static string? Reason(string? reason) =>
        reason is null || Shown.Contains(reason) ? reason
        : reason.StartsWith(BlockReason.ReferralVoided, StringComparison.Ordinal) ? BlockReason.ReferralVoided
        : "no coupon available";
}

public sealed record EventReferral(string Id, string Status, string? Reason, string? AdvocateId, string FriendId, int? RiskScore = null);

/// <summary>
/// Only on a <c>refund</c> or <c>chargeback</c>: the purchase it names and what it did to the referral:
/// <c>voided</c>, <c>kept</c> (other purchases of the friend still qualify it), or <c>none</c> (the purchase was not
/// attributed, had not converted the referral, or the referral was voided already).
/// </summary>
public sealed record EventRefund(string OrderId, string? PurchaseEventId, [property: Values(typeof(RefundEffect))] string Effect);

public static class RefundEffect
{
    public const string Voided = "voided";
    public const string Kept = "kept";
    public const string None = "none";

    /// <summary>No purchase has the order id: nothing is recorded, and the request is answered 422.</summary>
    public const string UnknownOrder = "unknown_order";

    /// <summary>The effects a 202 answer reports.</summary>
    public static readonly string[] All = [Voided, Kept, None];
}

/// <summary>Present when the event converted the referral: the advocate's count and whether it reached the goal.</summary>
public sealed record EventConversion(string Status, int ReferrerConverts, bool GoalComplete);
