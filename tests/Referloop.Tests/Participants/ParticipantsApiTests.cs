using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Participants;

public class ParticipantsApiTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task Joining_returns_a_unique_url_safe_code_and_share_url()
    {
        var campaign = await _client.CreateCampaign();
        var ann = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants",
            new { email = "ann@example.com", name = "Ann Lee", customValue = "crm-42" });

        Assert.StartsWith("par_", (string)ann["id"]!);
        Assert.Equal("ann@example.com", (string)ann["email"]!);
        Assert.Equal("Ann Lee", (string)ann["name"]!);
        Assert.Equal("crm-42", (string)ann["customValue"]!);
        var code = (string)ann["code"]!;
        Assert.Matches("^[A-Za-z0-9]{8}$", code);
        Assert.Equal($"http://referloop.test/r/{code}", (string)ann["shareUrl"]!);
        Assert.Equal(["referrer"], ann["roles"]!.AsArray().Select(r => (string)r!));
    }

    [Fact]
    public async Task The_same_email_in_any_case_returns_the_same_participant_with_200()
    {
        var campaign = await _client.CreateCampaign();
        var first = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "Bob@Example.NET" });
        var again = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants",
            new { email = "  bob@example.net ", name = "Bob Stone" }, HttpStatusCode.OK);

        Assert.Equal((string)first["id"]!, (string)again["id"]!);
        Assert.Equal((string)first["code"]!, (string)again["code"]!);
        Assert.Equal("bob@example.net", (string)again["email"]!);
        Assert.Equal("Bob Stone", (string)again["name"]!);
    }

    [Fact]
    public async Task Joining_writes_a_participant_joined_event_once()
    {
        var campaign = await _client.CreateCampaign();
        var joined = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "eve@example.org", name = "Eve" });
        await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "eve@example.org" }, HttpStatusCode.OK);

        var messages = await app.WithDb(db => db.Outbox.AsNoTracking()
            .Where(m => m.CampaignId == campaign && m.Type == "participant.joined").ToListAsync());
        var message = Assert.Single(messages);
        var data = JsonNode.Parse(message.Data)!;
        Assert.Equal((string)joined["id"]!, (string)data["participant"]!["id"]!);
        Assert.Equal("referrer", (string)data["participant"]!["role"]!);
        Assert.Equal("Spring referral", (string)data["campaign"]!["name"]!);
    }

    [Fact]
    public async Task Concurrent_joins_of_one_email_make_one_participant()
    {
        var campaign = await _client.CreateCampaign();
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email = "race@example.com" })));

        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK));
        var ids = await Task.WhenAll(responses.Select(async r => (string)(await r.ReadJson())["id"]!));
        Assert.Single(ids.Distinct());
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
    }

    [Fact]
    public async Task Codes_are_unique_across_many_participants()
    {
        var campaign = await _client.CreateCampaign();
        var codes = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            codes.Add((string)(await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = $"p{i}@example.com" }))["code"]!);
        }
        Assert.Equal(codes.Count, codes.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task Invalid_participant_input_is_a_400_naming_the_field()
    {
        var campaign = await _client.CreateCampaign();
        var response = await _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants",
            new { email = "not-an-email", name = new string('x', 201) });
        await response.AssertValidationProblem("email", "name");

        var missing = await _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { name = "No Email" });
        await missing.AssertValidationProblem("email");
    }

    [Fact]
    public async Task Joining_an_unknown_or_archived_campaign_is_refused()
    {
        var unknown = await _client.PostAsJsonAsync("/api/v1/campaigns/cmp_nope/participants", new { email = "a@example.com" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        var campaign = await _client.CreateCampaign();
        await _client.PostAsync($"/api/v1/campaigns/{campaign}/archive", null);
        var archived = await _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email = "a@example.com" });
        Assert.Equal(HttpStatusCode.Conflict, archived.StatusCode);
    }

    [Fact]
    public async Task List_searches_by_email_name_or_code_and_pages()
    {
        var campaign = await _client.CreateCampaign();
        var ann = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "ann@example.com", name = "Ann Lee" });
        await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "bob@example.net", name = "Bob Stone" });
        await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "carol@example.org", name = "Carol Lee" });

        static IEnumerable<string> Emails(JsonObject page) => page["data"]!.AsArray().Select(p => (string)p!["email"]!);

        Assert.Equal(["ann@example.com"], Emails(await _client.GetOk($"/api/v1/campaigns/{campaign}/participants?search=ANN@")));
        Assert.Equal(["ann@example.com", "carol@example.org"], Emails(await _client.GetOk($"/api/v1/campaigns/{campaign}/participants?search=lee")));
        Assert.Equal(["ann@example.com"], Emails(await _client.GetOk($"/api/v1/campaigns/{campaign}/participants?search={ann["code"]}")));

        var first = await _client.GetOk($"/api/v1/campaigns/{campaign}/participants?limit=2");
        Assert.Equal(2, first["data"]!.AsArray().Count);
        var second = await _client.GetOk($"/api/v1/campaigns/{campaign}/participants?limit=2&cursor={first["nextCursor"]}");
        Assert.Equal(["carol@example.org"], Emails(second));
        Assert.Null(second["nextCursor"]);
    }

    [Fact]
    public async Task Export_holds_everything_about_one_person_and_delete_removes_it()
    {
        var campaign = await _client.CreateCampaign();
        var ann = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "ann@example.com", name = "Ann Lee" });
        var id = (string)ann["id"]!;
        var visitor = app.CreateAnonymousClient();
        visitor.DefaultRequestHeaders.UserAgent.ParseAdd("TestBrowser/1.0");
        await visitor.GetAsync($"/r/{ann["code"]}");

        var exportResponse = await _client.GetAsync($"/api/v1/campaigns/{campaign}/participants/{id}/export");
        Assert.Equal(HttpStatusCode.OK, exportResponse.StatusCode);
        Assert.Contains("attachment", exportResponse.Content.Headers.ContentDisposition?.ToString() ?? exportResponse.Headers.ToString());
        var export = await exportResponse.ReadJson();
        Assert.Equal("ann@example.com", (string)export["participant"]!["email"]!);
        // A visit to Ann's link: when, not who (the visitor's browser and address are theirs).
        var click = Assert.Single(export["clicks"]!.AsArray());
        Assert.Null(click!["userAgent"]);
        Assert.Null(click["ip"]);
        Assert.Empty(export["visits"]!.AsArray());

        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/api/v1/campaigns/{campaign}/participants/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{id}")).StatusCode);
        Assert.Equal(0, await app.WithDb(db => db.Clicks.CountAsync(c => c.ParticipantId == id)));
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync($"/r/{ann["code"]}")).StatusCode);
    }

    [Fact]
    public async Task A_participant_is_only_found_under_its_own_campaign()
    {
        var one = await _client.CreateCampaign();
        var other = await _client.CreateCampaign();
        var ann = await _client.PostOk($"/api/v1/campaigns/{one}/participants", new { email = "ann@example.com" });

        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/api/v1/campaigns/{other}/participants/{ann["id"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.DeleteAsync($"/api/v1/campaigns/{other}/participants/{ann["id"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/api/v1/campaigns/{one}/participants/{ann["id"]}")).StatusCode);
    }
}
