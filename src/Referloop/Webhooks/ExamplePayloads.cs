namespace Referloop.Webhooks;

/// <summary>
/// A realistic <c>data</c> object for every event type, in the shapes of DESIGN §7; sent by "send test message"
/// and shown in docs/webhooks.md.
/// </summary>
public static class ExamplePayloads
{
    private const string Campaign = """{"id":"cmp_0196f1c2a7e07b3c9d5e2f10a4b6c8d0","name":"Spring referral"}""";

    private const string Advocate = """
        {"id":"par_0196f1c2b1047d2e8f3a5b6c7d8e9f01","email":"ann@example.com","name":"Ann Lee","code":"k3J9xQ2m","customValue":"crm-42","conversions":3}
        """;

    private const string Friend = """{"id":"par_0196f1c3d2057e1f9a4b6c8d0e2f4a61","email":"bob@example.net","name":"Bob Stone"}""";

    private const string Event = """{"type":"purchase","orderId":"ORD-1001","purchaseValue":120.5,"currency":"USD"}""";

    private static string Referral(string status, string? approvedAt) =>
        $$"""{"id":"ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72","status":"{{status}}","createdAt":"2026-11-20T14:03:11.000Z","approvedAt":{{(approvedAt is null ? "null" : $"\"{approvedAt}\"")}}}""";

    private static string ReferralData(string status, string? approvedAt, string? extra = null) =>
        $$$"""{"campaign":{{{Campaign}}},"referral":{{{Referral(status, approvedAt)}}},"advocate":{{{Advocate.Trim()}}},"friend":{{{Friend}}},"event":{{{Event}}}{{{extra}}}}""";

    public static readonly IReadOnlyDictionary<string, string> Data = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [EventTypes.ParticipantJoined] = $$$"""
            {"campaign":{{{Campaign}}},"participant":{"id":"par_0196f1c3d2057e1f9a4b6c8d0e2f4a61","email":"bob@example.net","name":"Bob Stone","code":"Hq7ZtR4w","customValue":null,"shareUrl":"https://referrals.example.com/r/Hq7ZtR4w","role":"invited","roles":["invited"]},"referredBy":{"id":"par_0196f1c2b1047d2e8f3a5b6c7d8e9f01","email":"ann@example.com","name":"Ann Lee","code":"k3J9xQ2m","customValue":"crm-42","shareUrl":"https://referrals.example.com/r/k3J9xQ2m","role":"referrer","roles":["referrer"]}}
            """.Trim(),
        [EventTypes.ReferralCreated] = ReferralData("pending", null),
        [EventTypes.ReferralQualified] = ReferralData("qualified", null),
        [EventTypes.ReferralApproved] = ReferralData("approved", "2026-11-20T14:03:12.000Z"),
        [EventTypes.ReferralVoided] = ReferralData("voided", null, ""","reason":"chargeback" """.TrimEnd()),
        [EventTypes.RewardIssued] = ReferralData("approved", "2026-11-20T14:03:12.000Z", """
            ,"reward":{"id":"rwd_0196f1c5f4079a3b1c6d8e0f2a4b6c83","recipient":"advocate","status":"issued","reason":null,"incentive":{"type":"rebate","amount":10,"currency":"USD","couponCode":null,"description":null}}
            """.Trim()),
        [EventTypes.RewardBlocked] = ReferralData("approved", "2026-11-20T14:03:12.000Z", """
            ,"reward":{"id":"rwd_0196f1c5f4079a3b1c6d8e0f2a4b6c84","recipient":"advocate","status":"blocked","reason":"limit reached","incentive":{"type":"rebate","amount":10,"currency":"USD","couponCode":null,"description":null}}
            """.Trim()),
        [EventTypes.RewardRevoked] = ReferralData("voided", "2026-11-20T14:03:12.000Z", """
            ,"reward":{"id":"rwd_0196f1c5f4079a3b1c6d8e0f2a4b6c83","recipient":"advocate","status":"revoked","reason":"refunded","incentive":{"type":"rebate","amount":10,"currency":"USD","couponCode":null,"description":null}}
            """.Trim()),
        [EventTypes.Conversion] = """
            {"conversion":"success","referrer_name":"Ann Lee","referrer_email":"ann@example.com","referee_name":"Bob Stone","referee_email":"bob@example.net","orderID":"ORD-1001","purchaseValue":"120.50","referrer_converts":5,"referrer_customValue":"crm-42","goal_complete":1}
            """.Trim(),
        [EventTypes.ReferralFlagged] = $$$"""
            {"campaign":{{{Campaign}}},"referral":{"id":"ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72","status":"flagged","reason":"flagged for review: sameIp: friend's IP 198.51.100.20 is one the advocate used","createdAt":"2026-11-20T14:03:11+00:00","qualifiedAt":null,"approvedAt":null,"voidedAt":null,"autoApproved":false},"advocate":{{{Advocate.Trim()}}},"friend":{"id":"par_0196f1c3d2057e1f9a4b6c8d0e2f4a61","email":"bob@example.net","name":"Bob Stone","code":"Hq7ZtR4w"},"event":{"type":"signup","orderId":null,"purchaseValue":null,"currency":null},"reward":null,"review":{"riskScore":50,"reasons":[{"check":"sameIp","action":"flag","reason":"friend's IP 198.51.100.20 is one the advocate used"}],"flaggedAt":"2026-11-20T14:03:11+00:00"}}
            """.Trim(),
        [EventTypes.ParticipantRiskChanged] = $$$"""
            {"campaign":{{{Campaign}}},"participant":{"id":"par_0196f1c2b1047d2e8f3a5b6c7d8e9f01","email":"ann@example.com","name":"Ann Lee","code":"k3J9xQ2m","customValue":"crm-42"},"oldLevel":"low","newLevel":"medium","reasons":["referral ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72 waits in the review queue, risk 50: sameIp (friend's IP 198.51.100.20 is one the advocate used)"],"referral":{"id":"ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72","status":"flagged","riskScore":50,"fraudDecision":"flagged"},"changedAt":"2026-11-20T14:03:11+00:00"}
            """.Trim(),
        [EventTypes.EndpointDisabled] = """
            {"endpoint":{"id":"whe_0196f1c6a508ab4c2d7e9f1a3b5c7d94","url":"https://crm.example.com","description":"CRM"},"reason":"gone","detail":"The receiver answered 410 Gone.","disabledAt":"2026-11-20T14:03:12+00:00"}
            """.Trim(),
        [EventTypes.MessageAttemptExhausted] = """
            {"endpoint":{"id":"whe_0196f1c6a508ab4c2d7e9f1a3b5c7d94","url":"https://crm.example.com","description":"CRM"},"message":{"id":"msg_0196f1c4e3078a1b2c3d4e5f60718293","type":"referral.approved","createdAt":"2026-11-19T10:12:40.215+00:00"},"deliveryId":"dlv_0196f1c4e30a9b8c7d6e5f4a3b2c1d0e","attempts":8,"lastStatusCode":500,"lastError":"The receiver answered 500 Internal Server Error.","failedAt":"2026-11-20T14:03:12+00:00"}
            """.Trim(),
    };
}
