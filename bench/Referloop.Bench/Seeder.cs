using System.Diagnostics;

namespace Referloop.Bench;

/// <summary>
/// Fills Referloop's tables straight through SQL (one INSERT … SELECT over a generated sequence per table), far faster
/// than the API. The columns come from the migrated schema: a new nullable column is left NULL, a new required one
/// stops the run with a message naming it, so the seed never silently drifts from the product.
/// </summary>
internal sealed class Seeder(BenchDatabase db, Action<string> log)
{
    public const string Events = "events";
    public const string Participants = "participants";
    public const string Outbox = "outbox";
    public const string Deliveries = "webhook_deliveries";
    public const string Attempts = "webhook_attempts";

    private const string UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

    private const string Properties = """{"plan":"pro","channel":"newsletter","sku":"SKU-00042","landing":"spring-sale"}""";

    // A reward.issued message as the engine writes it (DESIGN §7), about 560 bytes.
    private const string MessageData = """
        {"campaign":{"id":"cmp_seed","name":"Bench campaign"},"referral":{"id":"ref_seed","status":"approved","reason":null,"createdAt":"2026-11-25T10:00:00+00:00","qualifiedAt":"2026-11-25T10:00:00+00:00","approvedAt":"2026-11-25T10:00:00+00:00","voidedAt":null,"autoApproved":true},"advocate":{"id":"par_seed_a","email":"advocate@example.com","name":"Ann Lee","code":"k3J9xQ2m","customValue":null,"conversions":3},"friend":{"id":"par_seed_f","email":"friend@example.net","name":"Bob Stone","code":"p8R2mZ5q"},"event":{"type":"purchase","orderId":"seed","purchaseValue":120.5,"currency":"USD"},"reward":{"id":"rwd_seed","recipient":"advocate","participantId":"par_seed_a","ruleId":"rule_1","status":"issued","reason":null,"incentive":{"type":"rebate","amount":10,"currency":"USD","couponCode":null,"description":null}}}
        """;

    public async Task<bool> HasTableAsync(string table, CancellationToken ct) => (await db.ColumnsAsync(table, ct)).Count > 0;

    /// <summary>
    /// The stored history of a busy program: events and, when this build delivers webhooks, outbox messages,
    /// deliveries and one attempt each.
    /// </summary>
    public async Task SeedHistoryAsync(long rows, char tag, string campaignId, string endpointId, string endpointUrl, bool webhooks,
        CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow.AddHours(-1);
        // One millisecond apart, oldest first, like a history that grew over time.
        var back = $"({rows} - n)";
        var started = Stopwatch.GetTimestamp();
        var tables = new List<string>();
        async Task EventsAsync()
        {
            if (await HasTableAsync(Events, ct))
            {
                await InsertAsync(Events, rows, EventValues(tag, campaignId, now, back), ct);
                // Every event's customer is a participant of the campaign, as processing the events would have left them.
                await InsertAsync(Participants, rows, ParticipantValues(tag, campaignId, now, back), ct);
                lock (tables)
                {
                    tables.AddRange([Events, Participants]);
                }
            }
        }
        async Task WebhooksAsync()
        {
            if (!webhooks)
            {
                return;
            }
            await InsertAsync(Outbox, rows, OutboxValues(tag, campaignId, now, dispatched: true, back), ct);
            await InsertAsync(Deliveries, rows, DeliveryValues(tag, endpointId, now, back), ct);
            await InsertAsync(Attempts, rows, AttemptValues(tag, endpointId, endpointUrl, now, back), ct);
            lock (tables)
            {
                tables.AddRange([Outbox, Deliveries, Attempts]);
            }
        }
        if (db is PostgresBenchDatabase)
        {
            // Two independent chains on two connections: PostgreSQL builds each one's indexes on its own core.
            await Task.WhenAll(EventsAsync(), WebhooksAsync());
        }
        else
        {
            await EventsAsync();
            await WebhooksAsync();
        }
        await db.AfterSeedAsync(tables, ct);
        log($"seeded {rows:N0} rows into each of {string.Join(", ", tables)} in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
    }

    /// <summary>Messages waiting in the outbox (not yet fanned out to endpoints), as a burst of events would leave them.</summary>
    public async Task QueueMessagesAsync(long count, char tag, string campaignId, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        // Stamped now: an endpoint receives only messages written after it was created.
        await InsertAsync(Outbox, count, OutboxValues(tag, campaignId, DateTimeOffset.UtcNow, dispatched: false, back: "0"), ct);
        log($"queued {count:N0} messages in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
    }

    public static string MessagePrefix(char tag) => $"msg_0000{tag}";

    private string Id(string prefix, char tag) => $"('{prefix}_0000{tag}' || {db.Padded("n", 27)})";

    private string Quoted(string text) => $"'{text.Replace("'", "''")}'";

    private Dictionary<string, string> EventValues(char tag, string campaignId, DateTimeOffset now, string back) => new()
    {
        ["Id"] = Id("evt", tag),
        ["CampaignId"] = Quoted(campaignId),
        ["Type"] = "'purchase'",
        // Zero-padded, so that every index takes its rows in order (appends, not page splits all over the tree).
        ["Email"] = $"('seed{tag}-' || {db.Padded("n", 9)} || '@example.org')",
        ["Name"] = "('Seeded Friend ' || n)",
        ["OrderId"] = $"('seed{tag}-' || {db.Padded("n", 9)})",
        ["PurchaseValue"] = "'120.5'",
        ["Currency"] = "'USD'",
        // Many different visitors, none from the addresses the bench's purchases use (198.51.100.x).
        ["Ip"] = "('10.' || (n / 65536 % 256) || '.' || (n / 256 % 256) || '.' || (n % 256))",
        ["UserAgent"] = Quoted(UserAgent),
        ["Properties"] = Quoted(Properties),
        ["Outcome"] = Quoted("""{"eventId":"evt_seed","duplicate":false,"attributed":false,"attributedBy":null,"reason":"no referral code, click or earlier visit matched","referral":null,"rewards":[],"conversion":null}"""),
        ["OccurredAt"] = db.Instant(now, back),
        ["ReceivedAt"] = db.Instant(now, back),
    };

    private Dictionary<string, string> ParticipantValues(char tag, string campaignId, DateTimeOffset now, string back) => new()
    {
        ["Id"] = Id("par", tag),
        ["CampaignId"] = Quoted(campaignId),
        ["Email"] = $"('seed{tag}-' || {db.Padded("n", 9)} || '@example.org')",
        ["Name"] = "('Seeded Friend ' || n)",
        ["Code"] = $"('s{tag}' || {db.Padded("n", 9)})",
        ["IsReferrer"] = "0",
        ["IsInvited"] = "0",
        ["RiskLevel"] = "'low'",
        ["CreatedAt"] = db.Instant(now, back),
        ["UpdatedAt"] = db.Instant(now, back),
    };

    private Dictionary<string, string> OutboxValues(char tag, string campaignId, DateTimeOffset now, bool dispatched, string back) => new()
    {
        ["Id"] = Id("msg", tag),
        ["Type"] = "'reward.issued'",
        ["CampaignId"] = Quoted(campaignId),
        ["Data"] = Quoted(MessageData),
        ["CreatedAt"] = db.Instant(now, back),
        ["DispatchedAt"] = dispatched ? db.Instant(now, back) : "NULL",
    };

    private Dictionary<string, string> DeliveryValues(char tag, string endpointId, DateTimeOffset now, string back) => new()
    {
        ["Id"] = Id("dlv", tag),
        ["MessageId"] = Id("msg", tag),
        ["EndpointId"] = Quoted(endpointId),
        ["Status"] = "'succeeded'",
        ["Attempts"] = "1",
        ["Round"] = "1",
        ["NextAttemptAt"] = db.Instant(now, back),
        ["LastStatusCode"] = "200",
        ["IsTest"] = "0",
        ["CreatedAt"] = db.Instant(now, back),
        ["UpdatedAt"] = db.Instant(now, back),
        ["CompletedAt"] = db.Instant(now, back),
    };

    private Dictionary<string, string> AttemptValues(char tag, string endpointId, string url, DateTimeOffset now, string back) => new()
    {
        ["Id"] = Id("att", tag),
        ["DeliveryId"] = Id("dlv", tag),
        ["EndpointId"] = Quoted(endpointId),
        ["Number"] = "1",
        ["RequestId"] = Id("req", tag),
        ["Method"] = "'POST'",
        ["Url"] = Quoted(url),
        ["StatusCode"] = "200",
        ["LatencyMs"] = "2",
        ["ResponseExcerpt"] = "''",
        ["AttemptedAt"] = db.Instant(now, back),
    };

    private async Task InsertAsync(string table, long count, IReadOnlyDictionary<string, string> values, CancellationToken ct)
    {
        var columns = await db.ColumnsAsync(table, ct);
        if (columns.Count == 0)
        {
            throw new SkipException($"this build has no table '{table}'");
        }
        var names = new List<string>();
        var expressions = new List<string>();
        foreach (var column in columns)
        {
            if (values.TryGetValue(column.Name, out var expression))
            {
                names.Add($"\"{column.Name}\"");
                expressions.Add(db.Cast(expression, column));
            }
            else if (column.NotNull && !column.HasDefault)
            {
                throw new BenchException($"cannot seed '{table}': its required column '{column.Name}' is new to the bench; " +
                    "give it a value in bench/Referloop.Bench/Seeder.cs");
            }
        }
        await db.ExecuteAsync(
            $"INSERT INTO {table} ({string.Join(", ", names)}) SELECT {string.Join(", ", expressions)} FROM {db.Sequence(count)} AS s", ct, bulk: true);
    }
}
