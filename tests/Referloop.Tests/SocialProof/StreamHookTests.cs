using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.SocialProof;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;

namespace Referloop.Tests.SocialProof;

/// <summary>Each example body of seeds/001, posted as JSON and as form data, gives the documented item.</summary>
public class StreamHookTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _sender = app.CreateAnonymousClient();

    /// <summary>Posts the fields as JSON (values keep their JSON types) or as form data (every value a string).</summary>
    private async Task<(JsonObject Item, SocialProofItem Stored)> Post(string format, JsonObject fields, string? campaign = null)
    {
        campaign ??= await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        var response = format == "json"
            ? await _sender.PostJson(hook.Path, fields.ToJsonString())
            : await _sender.PostForm(hook.Path, Hooks.Form(Flatten(fields, "").ToArray()));
        response.EnsureStatus(HttpStatusCode.OK);
        var answer = await response.ReadJson();
        Assert.Equal("processed", (string)answer["outcome"]!);
        var item = answer["result"]!["item"]!.AsObject();
        var stored = await app.WithDb(db => db.SocialProofItems.AsNoTracking().SingleAsync(i => i.Id == (string)item["id"]!));
        return (item, stored);
    }

    private static IEnumerable<(string, string)> Flatten(JsonNode? node, string prefix) => node switch
    {
        JsonObject obj => obj.SelectMany(p => Flatten(p.Value, prefix.Length == 0 ? p.Key : $"{prefix}[{p.Key}]")),
        JsonArray array => array.SelectMany((v, i) => Flatten(v, $"{prefix}[{i}]")),
        JsonValue value => [(prefix, value.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : value.ToJsonString())],
        _ => [],
    };

    public static TheoryData<string> Formats => new() { "json", "form" };

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Basic_parameters_of_the_seed(string format)
    {
        var (item, stored) = await Post(format, new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["timestamp"] = 1528611279398,
            ["ip"] = "141.92.55.102",
            ["firstName"] = "John",
            ["lastName"] = "Smith",
            ["guid"] = "id",
        });

        Assert.Equal("John", (string)item["firstName"]!);
        Assert.Equal("S.", (string)item["lastInitial"]!);
        Assert.Equal("signup", (string)item["kind"]!);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1528611279398), item["occurredAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal("8 years ago", (string)item["relativeTime"]!);
        Assert.Equal("test@gmail.com", stored.Email);
        Assert.Equal("Smith", stored.LastName);
        Assert.Equal("id", stored.Guid);
        Assert.Null(item["email"]);
        Assert.Null(item["lastName"]);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Location_parameters_of_the_seed(string format)
    {
        var (item, stored) = await Post(format, new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["city"] = "Miami",
            ["country"] = "United States",
            ["countryCode"] = "US",
            ["state"] = "Florida",
            ["stateCode"] = "FL",
        });

        Assert.Equal("Miami", (string)item["city"]!);
        Assert.Equal("United States", (string)item["country"]!);
        Assert.Equal("US", (string)item["countryCode"]!);
        Assert.Equal(("Florida", "FL"), (stored.State, stored.StateCode));
        Assert.Equal(("Florida", "FL"), ((string)item["state"]!, (string)item["stateCode"]!));
    }

    [Theory]
    [InlineData("countryCode", "de", "Germany", "DE")]
    [InlineData("country", "Germany", "Germany", "DE")]
    [InlineData("country", "united kingdom", "united kingdom", "GB")]
    [InlineData("country", "Atlantis", "Atlantis", null)]
    public async Task Country_and_country_code_are_filled_from_each_other(string field, string value, string country, string? code)
    {
        var (item, _) = await Post("json", new JsonObject { ["email"] = "a@example.com", [field] = value });

        Assert.Equal(country, (string)item["country"]!);
        Assert.Equal(code, (string?)item["countryCode"]);
    }

    [Theory]
    [InlineData("stateCode", "FL", "Florida", "FL")]
    [InlineData("state", "texas", "texas", "TX")]
    public async Task Us_state_and_state_code_are_filled_from_each_other(string field, string value, string state, string stateCode)
    {
        var (item, stored) = await Post("form", new JsonObject { ["email"] = "a@example.com", ["countryCode"] = "US", [field] = value });

        Assert.Equal((state, stateCode), (stored.State, stored.StateCode));
        Assert.Equal("United States", (string)item["country"]!);
    }

    [Fact]
    public async Task State_codes_are_not_looked_up_outside_the_us()
    {
        var (_, stored) = await Post("json", new JsonObject { ["email"] = "a@example.com", ["countryCode"] = "CA", ["stateCode"] = "QC" });

        Assert.Null(stored.State);
        Assert.Equal("Canada", stored.Country);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Purchase_parameters_of_the_seed(string format)
    {
        var (item, stored) = await Post(format, new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["total"] = 55,
            ["currency"] = "USD",
            ["productName"] = "Sneakers",
            ["productLink"] = "https://sneakers.com/sneakers",
            ["productImage"] = "https://sneakers.com/sneakers.jpg",
        });

        Assert.Equal("purchase", (string)item["kind"]!);
        Assert.Equal("Sneakers", (string)item["product"]!["name"]!);
        Assert.Equal("https://sneakers.com/sneakers", (string)item["product"]!["link"]!);
        Assert.Equal("https://sneakers.com/sneakers.jpg", (string)item["product"]!["image"]!);
        Assert.Equal((55m, "USD"), (stored.Total, stored.Currency));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Multiple_products_parameters_of_the_seed(string format)
    {
        var (item, stored) = await Post(format, new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["products"] = new JsonArray(new JsonObject
            {
                ["name"] = "T-Shirt",
                ["link"] = "https://mystore.com/t-shirt",
                ["id"] = 123,
                ["image"] = "https://mystore.com/images/t-shirt.png",
                ["price"] = 55,
                ["quantity"] = 2,
            }),
        });

        Assert.Equal("T-Shirt", (string)item["product"]!["name"]!);
        Assert.Equal("https://mystore.com/t-shirt", (string)item["product"]!["link"]!);
        Assert.Equal("https://mystore.com/images/t-shirt.png", (string)item["product"]!["image"]!);
        var product = Assert.Single(stored.Products);
        Assert.Equal(new SocialProofProduct("T-Shirt", "https://mystore.com/t-shirt", "123", "https://mystore.com/images/t-shirt.png", 55m, 2), product);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task The_most_expensive_product_is_shown_when_prices_exist(string format)
    {
        var (item, _) = await Post(format, new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["products"] = new JsonArray(
                new JsonObject { ["name"] = "Socks", ["link"] = "https://s.example/socks", ["price"] = 5, ["id"] = "sku-1" },
                new JsonObject { ["name"] = "Boots", ["link"] = "https://s.example/boots", ["price"] = "120.50" },
                new JsonObject { ["name"] = "Laces", ["link"] = "https://s.example/laces" }),
        });

        Assert.Equal("Boots", (string)item["product"]!["name"]!);
    }

    [Fact]
    public async Task The_first_product_is_shown_when_none_has_a_price()
    {
        var (item, _) = await Post("form", new JsonObject
        {
            ["email"] = "test@gmail.com",
            ["products"] = new JsonArray(
                new JsonObject { ["name"] = "Socks", ["link"] = "https://s.example/socks" },
                new JsonObject { ["name"] = "Boots", ["link"] = "https://s.example/boots" }),
        });

        Assert.Equal("Socks", (string)item["product"]!["name"]!);
    }

    [Theory]
    [InlineData("1528611279", "2018-06-10T06:14:39+00:00")]
    [InlineData("1528611279398", "2018-06-10T06:14:39.398+00:00")]
    [InlineData("1.528611279E12", "2018-06-10T06:14:39+00:00")]
    [InlineData("2026-11-01T08:30:00Z", "2026-11-01T08:30:00+00:00")]
    [InlineData("2026-11-01T10:30:00+02:00", "2026-11-01T08:30:00+00:00")]
    public async Task Timestamps_in_seconds_milliseconds_or_iso_8601(string timestamp, string expected)
    {
        var (_, stored) = await Post("form", new JsonObject { ["email"] = "a@example.com", ["timestamp"] = timestamp });

        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), stored.OccurredAt);
    }

    [Fact]
    public async Task Without_a_timestamp_the_item_happened_when_received()
    {
        var (item, _) = await Post("json", new JsonObject { ["email"] = "a@example.com" });

        Assert.Equal(app.Clock.GetUtcNow(), item["occurredAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal("just now", (string)item["relativeTime"]!);
    }

    [Theory]
    [InlineData("json", """{"order": {"customer": {"contact": "Mail: jane.doe@example.org"}}, "total": 12}""")]
    [InlineData("form", "customer[emails][0]=jane.doe%40example.org&total=12")]
    public async Task The_email_is_found_anywhere_in_the_payload(string format, string body)
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = format == "json" ? await _sender.PostJson(hook.Path, body) : await _sender.PostForm(hook.Path, body);

        response.EnsureStatus(HttpStatusCode.OK);
        var item = (await response.ReadJson())["result"]!["item"]!;
        Assert.Equal("Jane", (string)item["firstName"]!);
        Assert.Equal("D.", (string)item["lastInitial"]!);
        Assert.Equal("jane.doe@example.org", (await app.WithDb(db => db.SocialProofItems.SingleAsync(i => i.CampaignId == campaign))).Email);
    }

    [Fact]
    public async Task Names_come_from_a_known_participant_before_the_email()
    {
        var campaign = await _admin.CreateCampaign();
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "ann.x@example.com", name = "Ann Lee" });

        var (item, stored) = await Post("json", new JsonObject { ["email"] = "Ann.X@example.com" }, campaign);

        Assert.Equal("Ann", (string)item["firstName"]!);
        Assert.Equal("L.", (string)item["lastInitial"]!);
        Assert.Equal("Lee", stored.LastName);
    }

    [Fact]
    public async Task Names_are_derived_from_the_email_when_absent()
    {
        var (item, stored) = await Post("json", new JsonObject { ["email"] = "john.smith+shop@example.com" });

        Assert.Equal("John", (string)item["firstName"]!);
        Assert.Equal("Smith", stored.LastName);
    }

    [Fact]
    public async Task An_ip_address_is_located_with_the_geoip_database()
    {
        var geoIp = app.Services.GetRequiredService<IGeoIp>();
        if (!geoIp.IsAvailable)
        {
            return; // the build installs the database from npm; without npm the server runs without IP location
        }

        var campaign = await _admin.CreateCampaign();
        var (item, stored) = await Post("json", new JsonObject { ["email"] = "a@example.com", ["ip"] = "8.8.8.8" }, campaign);

        Assert.Equal("US", (string)item["countryCode"]!);
        Assert.Equal("United States", (string)item["country"]!);
        Assert.True(stored.LocatedByIp);
        var feed = await _admin.GetOk($"/api/v1/campaigns/{campaign}/social-proof");
        Assert.Equal("IP Geolocation by DB-IP", (string)feed["attribution"]!["text"]!);
    }

    [Fact]
    public async Task A_location_in_the_payload_wins_over_the_ip_address()
    {
        var (item, stored) = await Post("json", new JsonObject { ["email"] = "a@example.com", ["ip"] = "8.8.8.8", ["city"] = "Lyon", ["countryCode"] = "FR" });

        Assert.Equal(("Lyon", "France"), ((string)item["city"]!, (string)item["country"]!));
        Assert.False(stored.LocatedByIp);
    }
}
