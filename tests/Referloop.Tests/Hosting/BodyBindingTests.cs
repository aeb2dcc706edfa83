using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Tests.Dashboard;
using Referloop.Tests.Support;

namespace Referloop.Tests.Hosting;

/// <summary>
/// A JSON body that does not bind, in the Production environment the server runs in: a 400 naming the field and the
/// rule, as in Development (where the framework's default differs). A string holding a NUL character is refused the
/// same way: PostgreSQL's text refuses it, which made it a 500.
/// </summary>
public class BodyBindingTests(ProductionApp app) : IClassFixture<ProductionApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Task<HttpResponseMessage> Post(string url, string json) =>
        _admin.PostAsync(url, new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task A_value_of_the_wrong_type_is_a_400_naming_the_field()
    {
        var response = await Post("/api/v1/campaigns",
            """{"name": "Spring", "landingUrl": "https://shop.example.com/", "attributionWindowDays": "thirty"}""");

        var problem = await response.AssertValidationProblem("attributionWindowDays");
        Assert.Contains("wrong type", (string)problem["errors"]!["attributionWindowDays"]![0]!);
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_a_400_saying_so()
    {
        var response = await Post("/api/v1/campaigns", """{"name": "Spring", """);

        var problem = await response.AssertValidationProblem();
        Assert.Equal("The request body could not be read.", (string)problem["title"]!);
    }

    [Fact]
    public async Task A_nul_in_a_campaign_name_is_a_400_naming_the_field_and_nothing_is_written()
    {
        var response = await Post("/api/v1/campaigns",
            """{"name": "Spring\u0000", "slug": "nul-spring", "landingUrl": "https://shop.example.com/"}""");

        var problem = await response.AssertValidationProblem("name");
        Assert.Equal(NulGuard.JsonRule, (string)problem["errors"]!["name"]![0]!);
        Assert.False(await app.WithDb(db => db.Campaigns.AnyAsync(c => c.Slug == "nul-spring")));
    }

    // The guard looks through a body of any size the server takes, a piece at a time: past 1 MiB, the escape reached
    // PostgreSQL, a 500. With 16,349 characters before it, the escape starts 3 bytes before the end of the first
    // 16 KiB piece.
    [Theory]
    [InlineData(2 * 1024 * 1024)]
    [InlineData(16_349)]
    public async Task A_nul_far_into_a_large_body_is_a_400_naming_the_field(int padding)
    {
        var response = await Post("/api/v1/campaigns",
            $$"""{"description": "{{new string('x', padding)}}", "name": "Big\u0000", "slug": "nul-big-{{padding}}", "landingUrl": "https://shop.example.com/"}""");

        var problem = await response.AssertValidationProblem("name");
        Assert.Equal(NulGuard.JsonRule, (string)problem["errors"]!["name"]![0]!);
        Assert.False(await app.WithDb(db => db.Campaigns.AnyAsync(c => c.Slug == $"nul-big-{padding}")));
    }

    [Fact]
    public async Task A_nul_in_an_event_field_is_a_400_naming_it_and_in_free_form_properties_is_kept_escaped()
    {
        var campaign = await _admin.CreateCampaign();

        var inOrderId = await Post("/api/v1/events",
            $$"""{"campaignId": "{{campaign}}", "type": "purchase", "email": "nul@example.com", "orderId": "o\u00001", "amount": 10}""");
        var inProperties = await Post("/api/v1/events",
            $$$"""{"campaignId": "{{{campaign}}}", "type": "purchase", "email": "nul@example.com", "orderId": "o2", "amount": 10, "properties": {"couponCode": "c\u0000"}}""");
        // Free-form properties are kept as JSON, where a NUL stays escaped.
        var inFreeForm = await Post("/api/v1/events",
            $$$"""{"campaignId": "{{{campaign}}}", "type": "purchase", "email": "nul@example.com", "orderId": "o4", "amount": 10, "properties": {"k": ["v\u0000"]}}""");
        // A backslash followed by the text u0000 is no NUL.
        var escapedBackslash = await Post("/api/v1/events",
            $$"""{"campaignId": "{{campaign}}", "type": "purchase", "email": "nul@example.com", "orderId": "o3\\u0000", "amount": 10}""");

        var problem = await inOrderId.AssertValidationProblem("orderId");
        Assert.Equal(NulGuard.JsonRule, (string)problem["errors"]!["orderId"]![0]!);
        await inProperties.AssertValidationProblem("properties.couponCode");
        inFreeForm.EnsureStatus(HttpStatusCode.Accepted);
        escapedBackslash.EnsureStatus(HttpStatusCode.Accepted);
        Assert.False(await app.WithDb(db => db.Events.AnyAsync(e => e.OrderId == "o2")));
    }

    /// <summary>.NET's <c>$</c> also matches before a final newline: such a value passed its rule one character longer than its column.</summary>
    [Fact]
    public async Task A_value_that_matches_its_rule_but_for_a_final_newline_is_a_400_naming_the_field()
    {
        var sixtyFour = new string('a', 64);
        var campaign = await _admin.CreateCampaign();

        var slug = await _admin.PostAsJsonAsync("/api/v1/campaigns",
            new { name = "Newline", slug = sixtyFour + "\n", landingUrl = "https://shop.example.com/" });
        var ruleId = await _admin.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Newline rule",
            landingUrl = "https://shop.example.com/",
            rewards = new[] { new { id = sixtyFour + "\n", recipient = "advocate", trigger = "converted", kind = "standard",
                incentive = new { type = "rebate", amount = 10, currency = "USD" } } },
        });
        var currency = await _admin.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, type = "purchase", email = "nl@example.com", orderId = "nl1", amount = 10, currency = "usd\n" });
        var type = await _admin.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, type = sixtyFour + "\n", email = "nl@example.com" });
        var zone = await _admin.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, type = "signup", email = "nl@example.com", ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295" });
        var longZone = await _admin.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, type = "signup", email = "nl@example.com", ip = "1:2:3:4:5:6:7:8%" + new string('z', 40) });
        var port = await _admin.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, type = "signup", email = "nl@example.com", ip = "[::1]:80" });

        await slug.AssertValidationProblem("slug");
        await ruleId.AssertValidationProblem("rewards[0].id");
        await currency.AssertValidationProblem("currency");
        await type.AssertValidationProblem("type");
        await zone.AssertValidationProblem("ip");
        await longZone.AssertValidationProblem("ip");
        await port.AssertValidationProblem("ip");
    }

    [Fact]
    public async Task A_query_parameter_of_the_wrong_type_is_a_400_naming_it()
    {
        var response = await _admin.GetAsync("/api/v1/events?limit=many");

        var problem = await response.AssertValidationProblem("limit");
        Assert.Equal("The request is not valid.", (string)problem["title"]!);
    }

    [Fact]
    public async Task A_nul_is_found_in_a_body_sent_chunked_or_behind_a_repeated_name()
    {
        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/api/v1/campaigns")
        {
            Content = new StringContent("""{"name": "Spring\u0000", "landingUrl": "https://shop.example.com/"}""", Encoding.UTF8, "application/json"),
        };
        chunked.Headers.TransferEncodingChunked = true;

        var inChunks = await _admin.SendAsync(chunked);
        var repeated = await Post("/api/v1/campaigns",
            """{"name": "Spring", "name": "Spring\u0000", "landingUrl": "https://shop.example.com/"}""");

        await inChunks.AssertValidationProblem("name");
        await repeated.AssertValidationProblem("body");
    }
}
