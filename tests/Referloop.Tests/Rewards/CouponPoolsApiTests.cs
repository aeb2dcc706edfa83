using System.Net;
using System.Net.Http.Json;
using System.Text;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Rewards;

public class CouponPoolsApiTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    private static StringContent Csv(string text) => new(text, Encoding.UTF8, "text/csv");

    private async Task<System.Text.Json.Nodes.JsonObject> Upload(string url, HttpContent content)
    {
        var response = await _client.PostAsync(url, content);
        response.EnsureStatus(HttpStatusCode.OK);
        return await response.ReadJson();
    }

    [Fact]
    public async Task Putting_a_pool_creates_it_with_a_secret_shown_once_and_updates_its_url()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/welcome10";

        var created = await _client.PutAsJsonAsync(url, new { createCouponUrl = "https://shop.example.com/coupons" });
        created.EnsureStatus(HttpStatusCode.Created);
        Assert.Equal(url, created.Headers.Location?.OriginalString);
        var pool = await created.ReadJson();
        Assert.Equal("welcome10", (string)pool["name"]!);
        Assert.Equal("https://shop.example.com/coupons", (string)pool["createCouponUrl"]!);
        Assert.True(WebhookSignature.IsValidSecret((string)pool["secret"]!));
        Assert.Equal(0, (int)pool["available"]!);

        var updated = await _client.PutAsJsonAsync(url, new { createCouponUrl = (string?)null });
        updated.EnsureStatus(HttpStatusCode.OK);
        var body = await updated.ReadJson();
        Assert.Null(body["createCouponUrl"]);
        Assert.False(body.ContainsKey("secret"));
        Assert.False((await _client.GetOk(url)).ContainsKey("secret"));
    }

    [Fact]
    public async Task Rotating_the_secret_returns_a_new_one()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/vip";
        var first = (string)(await (await _client.PutAsJsonAsync(url, new { })).ReadJson())["secret"]!;

        var rotated = await _client.PostOk($"{url}/rotate-secret", new { }, HttpStatusCode.OK);

        Assert.True(WebhookSignature.IsValidSecret((string)rotated["secret"]!));
        Assert.NotEqual(first, (string)rotated["secret"]!);
        (await _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/none/rotate-secret", new { }))
            .EnsureStatus(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Json_upload_creates_the_pool_and_counts_repeats_and_codes_already_there()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons";

        var first = await _client.PostOk(url, new { codes = new[] { "WELCOME-001", "WELCOME-002" } }, HttpStatusCode.OK);
        Assert.Equal(2, (int)first["added"]!);
        Assert.Equal(0, (int)first["duplicates"]!);
        Assert.Equal(2, (int)first["available"]!);

        var second = await _client.PostOk(url, new { codes = new[] { "WELCOME-002", "WELCOME-003", "WELCOME-003", "welcome-003" } }, HttpStatusCode.OK);
        Assert.Equal(2, (int)second["added"]!);
        Assert.Equal(2, (int)second["duplicates"]!);
        Assert.Equal(4, (int)second["available"]!);

        var pools = await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools");
        var pool = Assert.Single(pools["data"]!.AsArray())!;
        Assert.Equal("welcome10", (string)pool["name"]!);
        Assert.Equal(4, (int)pool["available"]!);
        Assert.Equal(0, (int)pool["allocated"]!);
    }

    [Fact]
    public async Task Csv_upload_tolerates_a_header_blank_lines_crlf_and_quotes()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/spring/coupons";

        var result = await Upload(url, Csv("code\r\nSPRING-1\r\n\r\n\"SPRING-2\"\r\nSPRING-1\r\n"));

        Assert.Equal(2, (int)result["added"]!);
        Assert.Equal(1, (int)result["duplicates"]!);
        Assert.Equal(2, (int)result["available"]!);
        var plain = await Upload(url, new StringContent("SPRING-3\n", Encoding.UTF8, "text/plain"));
        Assert.Equal(3, (int)plain["available"]!);
    }

    [Fact]
    public async Task Bad_codes_are_named_by_json_path_or_csv_line()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons";

        await (await _client.PostAsJsonAsync(url, new { codes = new[] { "OK", new string('X', 101) } })).AssertValidationProblem("codes[1]");
        await (await _client.PostAsJsonAsync(url, new { codes = Array.Empty<string>() })).AssertValidationProblem("codes");
        await (await _client.PostAsJsonAsync(url, new { })).AssertValidationProblem("codes");
        await (await _client.PostAsync(url, Csv("code\nOK\n\"unclosed\n"))).AssertValidationProblem("line 3");
        await (await _client.PostAsync(url, new StringContent("{\"codes\": [1]}", Encoding.UTF8, "application/json")))
            .AssertValidationProblem("codes[0]");
        await (await _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/bad%20name/coupons", new { codes = new[] { "A" } }))
            .AssertValidationProblem("pool");

        // Nothing of a rejected upload is kept, not even the pool it would have created.
        (await _client.GetAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10")).EnsureStatus(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task One_upload_takes_up_to_100000_codes()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/big/coupons";
        var csv = string.Join('\n', Enumerable.Range(0, 100_001).Select(i => $"C{i}"));

        var tooMany = await _client.PostAsync(url, Csv(csv));
        var problem = await tooMany.AssertValidationProblem("codes");
        Assert.Contains("at most 100,000", problem["errors"]!["codes"]![0]!.ToString());

        var result = await Upload(url, Csv(csv[..csv.LastIndexOf('\n')]));
        Assert.Equal(100_000, (int)result["added"]!);
        Assert.Equal(100_000, (int)result["available"]!);
    }

    [Fact]
    public async Task Other_content_types_get_415_and_unknown_campaigns_404()
    {
        var campaign = await _client.CreateCampaign();
        var xml = await _client.PostAsync($"/api/v1/campaigns/{campaign}/coupon-pools/p/coupons",
            new StringContent("<codes/>", Encoding.UTF8, "application/xml"));
        xml.EnsureStatus(HttpStatusCode.UnsupportedMediaType);
        Assert.Contains("text/csv", (string)(await xml.ReadJson())["detail"]!);

        (await _client.PostAsJsonAsync("/api/v1/campaigns/cmp_nope/coupon-pools/p/coupons", new { codes = new[] { "A" } }))
            .EnsureStatus(HttpStatusCode.NotFound);
        (await _client.GetAsync("/api/v1/campaigns/cmp_nope/coupon-pools")).EnsureStatus(HttpStatusCode.NotFound);
        (await _client.PutAsJsonAsync("/api/v1/campaigns/cmp_nope/coupon-pools/p", new { })).EnsureStatus(HttpStatusCode.NotFound);
        await (await _client.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/p", new { createCouponUrl = "ftp://x" }))
            .AssertValidationProblem("createCouponUrl");
    }

    [Fact]
    public async Task Coupons_are_listed_in_pages_and_by_status()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/list/coupons";
        await Upload(url, Csv(string.Join('\n', Enumerable.Range(1, 5).Select(i => $"LIST-{i}"))));

        var first = await _client.GetOk($"{url}?limit=3");
        Assert.Equal(3, first["data"]!.AsArray().Count);
        Assert.All(first["data"]!.AsArray(), c => Assert.Equal("available", (string)c!["status"]!));
        var second = await _client.GetOk($"{url}?limit=3&cursor={(string)first["nextCursor"]!}");
        Assert.Null(second["nextCursor"]);
        var codes = first["data"]!.AsArray().Concat(second["data"]!.AsArray()).Select(c => (string)c!["code"]!);
        Assert.Equal(["LIST-1", "LIST-2", "LIST-3", "LIST-4", "LIST-5"], codes.Order());

        Assert.Empty((await _client.GetOk($"{url}?status=allocated"))["data"]!.AsArray());
        await (await _client.GetAsync($"{url}?status=used")).AssertValidationProblem("status");
    }

    [Fact]
    public async Task Concurrent_uploads_of_overlapping_codes_add_each_code_once()
    {
        var campaign = await _client.CreateCampaign();
        var url = $"/api/v1/campaigns/{campaign}/coupon-pools/race/coupons";

        var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            _client.PostAsJsonAsync(url, new { codes = Enumerable.Range(0, 200).Select(i => $"RACE-{i}") })));

        var results = await Task.WhenAll(responses.Select(async r =>
        {
            r.EnsureStatus(HttpStatusCode.OK);
            return await r.ReadJson();
        }));
        Assert.Equal(200, results.Sum(r => (int)r["added"]!));
        Assert.Equal(600, results.Sum(r => (int)r["duplicates"]!));
        Assert.Equal(200, (int)(await _client.GetOk($"/api/v1/campaigns/{campaign}/coupon-pools/race"))["available"]!);
    }
}
