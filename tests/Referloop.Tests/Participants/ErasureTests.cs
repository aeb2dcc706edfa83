using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using Referloop.Webhooks;

namespace Referloop.Tests.Participants;

public class ErasureTests(WebhookApp app) : IClassFixture<WebhookApp>, IAsyncLifetime
{
    private const string Email = "Zephyrine.Q+vip@Example.com";
    private const string Name = "Zephyrine Quillfeather";

    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly List<string> _endpoints = [];

    public Task InitializeAsync()
    {
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var id in _endpoints)
        {
            await _admin.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
        }
    }

    [Fact]
    public async Task Erasure_leaves_the_email_and_name_in_no_table_and_the_export_held_them_all()
    {
        var campaign = await _admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Erasure"));
        // A query-format receiver that echoes what it got: the attempt log then holds the e-mail in URL and excerpt.
        await using var echo = await Receiver.StartAsync();
        echo.Respond = (_, request) => new Reply(200, request.Query);
        await using var failing = await Receiver.StartAsync();
        failing.Respond = (_, _) => new Reply(500, "down");
        var echoId = await Endpoint(echo, campaign, "query");
        var failingId = await Endpoint(failing, campaign, "json");

        using var join = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/campaigns/{campaign}/participants")
        {
            Content = JsonContent.Create(new { email = Email, name = Name }),
        };
        join.Headers.Add("Idempotency-Key", "join-zephyrine");
        var person = await (await _admin.SendAsync(join)).ReadJson();
        var id = (string)person["id"]!;
        // Her own purchase, and a friend who arrives through her code and buys: a referral, a reward, a conversion.
        await _admin.PostOk("/api/v1/events", new { campaignId = campaign, type = "signup", email = Email, name = Name, ip = "198.51.100.23" },
            HttpStatusCode.Accepted);
        await _admin.PostOk("/api/v1/events", new { campaignId = campaign, type = "signup", email = "friend@example.net", referralCode = (string)person["code"]! },
            HttpStatusCode.Accepted);
        await _admin.PostOk("/api/v1/events", new { campaignId = campaign, type = "purchase", email = "friend@example.net", orderID = "ORD-9", purchaseValue = 40 },
            HttpStatusCode.Accepted);
        // Social proof, once as JSON and once as a form; the e-mail in another letter case.
        var stream = await _admin.CreateHook(campaign, "stream");
        var sender = app.CreateAnonymousClient();
        (await sender.PostJson(stream.Path, JsonSerializer.Serialize(new { email = Email.ToUpperInvariant(), firstName = "Zephyrine", lastName = "Quillfeather", productName = "Kite" })))
            .EnsureStatus(HttpStatusCode.OK);
        (await sender.PostForm(stream.Path, Hooks.Form(("customer[email]", Email), ("firstName", "Zephyrine"), ("productName", "Reel"))))
            .EnsureStatus(HttpStatusCode.OK);
        await AllAttempted(echoId, failingId);

        var joined = await app.WithDb(db => db.Outbox.AsNoTracking()
            .Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined && m.Data.Contains(id) && !m.Data.Contains("friend@"))
            .Select(m => m.Id).SingleAsync());
        Assert.Contains(Found(await AllText()), f => f.Table == "webhook_attempts");

        var export = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{id}/export");
        Assert.Equal(2, export["socialProof"]!.AsArray().Count);
        Assert.Equal(2, export["inboundRequests"]!.AsArray().Count);
        Assert.Contains(export["inboundRequests"]!.AsArray(), r => ((string)r!["body"]!).Contains("ZEPHYRINE.Q"));
        Assert.Single(export["referrals"]!.AsArray());
        Assert.NotEmpty(export["rewards"]!.AsArray());
        Assert.Single(export["events"]!.AsArray());
        Assert.Equal("198.51.100.23", (string)export["ips"]![0]!["ip"]!);
        Assert.Contains(export["counters"]!.AsArray(), c => (string)c!["name"]! == "conversions");
        Assert.Contains(export["idempotencyKeys"]!.AsArray(), k => (string)k!["key"]! == "join-zephyrine");
        var messages = export["messages"]!.AsArray();
        Assert.Contains(messages, m => (string)m!["type"]! == EventTypes.Conversion);
        Assert.Contains(messages, m => (string)m!["id"]! == joined);
        Assert.Contains(messages.SelectMany(m => m!["deliveries"]!.AsArray()).SelectMany(d => d!["attempts"]!.AsArray()),
            a => ((string)a!["url"]!).Contains("referrer_email="));
        // Everything the scan below looks for is in the export, and nowhere else once she is erased.
        var exported = export.ToJsonString().ToLowerInvariant();
        Assert.Contains("quillfeather", exported);

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{id}")).StatusCode);

        var left = Found(await AllText());
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left.Select(f => $"{f.Table}.{f.Column}: {f.Value}")));
        Assert.False(await app.WithDb(db => db.IdempotencyKeys.AnyAsync(k => k.Key == "join-zephyrine")));

        // The message keeps its shape; its pending delivery is cancelled and stays unsent, even by a replay.
        var message = await _admin.GetOk($"/api/v1/messages/{joined}");
        Assert.Equal(id, (string)message["data"]!["participant"]!["id"]!);
        Assert.Equal("[erased]", (string)message["data"]!["participant"]!["email"]!);
        Assert.Equal("[erased]", (string)message["data"]!["participant"]!["name"]!);
        var cancelled = message["deliveries"]!.AsArray().Single(d => (string)d!["endpointId"]! == failingId)!;
        Assert.Equal("cancelled", (string)cancelled["status"]!);
        var sent = failing.Requests.Count;
        app.Clock.Advance(TimeSpan.FromHours(12));
        await failing.AssertStillAsync(sent);
        Assert.Equal(HttpStatusCode.Conflict, (await _admin.PostAsync($"/api/v1/messages/{cancelled["id"]}/replay", null)).StatusCode);
        // Purged by the erasure: no delivery of it is sent again with [erased] in it, the succeeded one neither.
        Assert.NotNull(message["dataPurgedAt"]);
        Assert.Equal(HttpStatusCode.Conflict, (await _admin.PostAsync($"/api/v1/messages/{joined}/replay", null)).StatusCode);
        // What the erasure left (ids, codes, other people's data) is still emptied once its retention ends.
        app.Clock.Advance(TimeSpan.FromDays(31));
        await app.Services.GetRequiredService<RetentionSweep>().PurgeAsync(default);
        Assert.Empty((await _admin.GetOk($"/api/v1/messages/{joined}"))["data"]!.AsObject());
    }

    [Fact]
    public async Task Erasing_a_friend_deletes_their_own_visit_to_the_advocates_link()
    {
        var campaign = await _admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Erasure of a visit"));
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "visited-ann@example.com" });
        var visitor = app.CreateAnonymousClient();
        visitor.DefaultRequestHeaders.Add("X-Test-Ip", "203.0.113.77");
        var visit = await visitor.GetAsync($"/r/{(string)advocate["code"]!}");
        var clickId = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(visit.Headers.Location!.Query)["rl_click"].ToString();
        var signup = await _admin.PostOk("/api/v1/events",
            new { campaignId = campaign, type = "signup", email = "visiting-bob@example.net", clickId }, HttpStatusCode.Accepted);
        var friendId = (string)signup["referral"]!["friendId"]!;
        // Before: the visit is in the friend's export, with their address; the advocate's shows only that it happened.
        var friendExport = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{friendId}/export");
        var own = Assert.Single(friendExport["visits"]!.AsArray());
        Assert.Equal(clickId, (string)own!["id"]!);
        Assert.Equal("203.0.113.77", (string)own["ip"]!);
        var advocateExport = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{advocate["id"]}/export");
        var onLink = Assert.Single(advocateExport["clicks"]!.AsArray());
        Assert.Equal(clickId, (string)onLink!["id"]!);
        Assert.Null(onLink["ip"]);

        (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{friendId}")).EnsureStatus(HttpStatusCode.NoContent);

        Assert.False(await app.WithDb(db => db.Clicks.AnyAsync(c => c.Id == clickId)), "the friend's visit, with their address, is gone");
    }

    [Fact]
    public async Task Raw_inbound_requests_and_delivered_bodies_are_purged_after_their_retention()
    {
        var campaign = await _admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Retention"));
        await using var receiver = await Receiver.StartAsync();
        var endpointId = await Endpoint(receiver, campaign, "json");
        var stream = await _admin.CreateHook(campaign, "stream");
        (await app.CreateAnonymousClient().PostJson(stream.Path, """{"email":"old@example.com","productName":"Kite"}"""))
            .EnsureStatus(HttpStatusCode.OK);
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "kept@example.com", name = "Kept Body" });
        await AllSucceeded(endpointId);
        var sweep = app.Services.GetRequiredService<RetentionSweep>();

        app.Clock.Advance(TimeSpan.FromDays(29));
        await sweep.PurgeAsync(default);
        Assert.True(await app.WithDb(db => db.InboundRequests.AnyAsync(r => r.CampaignId == campaign)));

        app.Clock.Advance(TimeSpan.FromDays(2));
        await sweep.PurgeAsync(default);
        Assert.False(await app.WithDb(db => db.InboundRequests.AnyAsync(r => r.CampaignId == campaign)));
        var messageId = await app.WithDb(db => db.Outbox.Where(m => m.CampaignId == campaign).Select(m => m.Id).SingleAsync());
        var deliveries = await app.WithDb(db => db.WebhookDeliveries.AsNoTracking().Where(d => d.MessageId == messageId)
            .Select(d => $"{d.Id} {d.EndpointId} {d.Status} {d.Attempts} {d.CompletedAt:O}").ToListAsync());
        Assert.True(deliveries.Count == 1, string.Join("; ", deliveries) + $" now {app.Clock.GetUtcNow():O}");
        var message = await _admin.GetOk($"/api/v1/messages/{messageId}");
        Assert.Empty(message["data"]!.AsObject());
        Assert.NotNull(message["dataPurgedAt"]);
        Assert.Equal(HttpStatusCode.Conflict, (await _admin.PostAsync($"/api/v1/messages/{messageId}/replay", null)).StatusCode);
    }

    private async Task<string> Endpoint(Receiver receiver, string campaign, string format)
    {
        var created = await _admin.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), campaignId = campaign, format });
        _endpoints.Add((string)created["id"]!);
        return (string)created["id"]!;
    }

    /// <summary>Waits until every message is fanned out and each of its deliveries to these endpoints was tried once.</summary>
    private async Task AllAttempted(params string[] endpointIds)
    {
        for (var i = 0; i < 200; i++)
        {
            var done = await app.WithDb(async db =>
                !await db.Outbox.AnyAsync(m => m.DispatchedAt == null)
                && await db.WebhookDeliveries.AnyAsync(d => endpointIds.Contains(d.EndpointId))
                && !await db.WebhookDeliveries.AnyAsync(d => endpointIds.Contains(d.EndpointId) && d.Attempts == 0));
            if (done)
            {
                return;
            }
            await Task.Delay(100);
        }
        var state = await app.WithDb(db => db.WebhookDeliveries.AsNoTracking().Where(d => endpointIds.Contains(d.EndpointId))
            .Select(d => $"{d.Id} {d.Status} {d.Attempts} {d.ClaimedBy} {d.NextAttemptAt:O}").ToListAsync());
        var undispatched = await app.WithDb(db => db.Outbox.CountAsync(m => m.DispatchedAt == null));
        Assert.Fail($"the deliveries were not all attempted at {app.Clock.GetUtcNow():O}; {undispatched} undispatched: " + string.Join("; ", state));
    }

    /// <summary>
    /// Waits until every delivery to the endpoint succeeded; one whose success could not be recorded at once is tried
    /// again on the retry schedule, so the clock moves on meanwhile.
    /// </summary>
    private async Task AllSucceeded(string endpointId)
    {
        for (var i = 0; i < 200; i++)
        {
            var done = await app.WithDb(async db =>
                !await db.Outbox.AnyAsync(m => m.DispatchedAt == null)
                && await db.WebhookDeliveries.AnyAsync(d => d.EndpointId == endpointId)
                && !await db.WebhookDeliveries.AnyAsync(d => d.EndpointId == endpointId && d.Status != DeliveryStatus.Succeeded));
            if (done)
            {
                return;
            }
            app.Clock.Advance(TimeSpan.FromSeconds(10));
            await Task.Delay(100);
        }
        var state = await app.WithDb(db => db.WebhookDeliveries.AsNoTracking().Where(d => d.EndpointId == endpointId)
            .Select(d => $"{d.Id} {d.Status} {d.Attempts} {d.ClaimedBy} {d.NextAttemptAt:O} {d.LastError}").ToListAsync());
        var undispatched = await app.WithDb(db => db.Outbox.Where(m => m.DispatchedAt == null).Select(m => m.Type + " " + m.CampaignId).ToListAsync());
        Assert.Fail($"the deliveries did not all succeed at {app.Clock.GetUtcNow():O}; undispatched: {string.Join(", ", undispatched)}; " + string.Join("; ", state));
    }

    private sealed record Cell(string Table, string Column, string Value);

    /// <summary>Every value of every column of every table, as text.</summary>
    private Task<List<Cell>> AllText() => app.WithDb(async db =>
    {
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync();
        var tables = new List<string>();
        await using (var list = connection.CreateCommand())
        {
            list.CommandText = ReferloopApp.OnPostgres
                ? "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                : "SELECT name FROM sqlite_master WHERE type = 'table'";
            await using var reader = await list.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }
        Assert.Contains("social_proof_items", tables);
        var cells = new List<Cell>();
        foreach (var table in tables)
        {
            await using var select = connection.CreateCommand();
            select.CommandText = $"SELECT * FROM \"{table}\"";
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                for (var column = 0; column < reader.FieldCount; column++)
                {
                    if (!reader.IsDBNull(column) && Text(reader, column) is { } value)
                    {
                        cells.Add(new Cell(table, reader.GetName(column), value));
                    }
                }
            }
        }
        return cells;
    });

    private static string? Text(DbDataReader reader, int column) => reader.GetValue(column) switch
    {
        string text => text,
        byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
        _ => null,
    };

    /// <summary>Cells that hold the e-mail or a part of the name, in any letter case and spelling.</summary>
    private static List<Cell> Found(List<Cell> cells)
    {
        var email = Email.ToLowerInvariant();
        string[] needles =
        [
            email, JsonEncodedText.Encode(email).ToString().ToLowerInvariant(), Uri.EscapeDataString(email).ToLowerInvariant(),
            "zephyrine", "quillfeather",
        ];
        return cells.Where(c => needles.Any(n => c.Value.Contains(n, StringComparison.OrdinalIgnoreCase))).ToList();
    }
}
