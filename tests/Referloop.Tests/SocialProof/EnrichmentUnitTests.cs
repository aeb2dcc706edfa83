using System.Text.Json.Nodes;
using Referloop.InboundHooks;
using Referloop.SocialProof;

namespace Referloop.Tests.SocialProof;

public class EnrichmentUnitTests
{
    [Fact]
    public void Every_iso_3166_country_round_trips_between_code_and_name()
    {
        Assert.Equal(249, Places.CountryCount);
        foreach (var code in new[] { "US", "DE", "FR", "JP", "BR", "ZA", "AQ", "XK" }.Where(c => Places.CountryName(c) is not null))
        {
            Assert.Equal(code, Places.CountryCode(Places.CountryName(code)));
        }
        Assert.Equal("United States", Places.CountryName("us"));
        Assert.Equal("US", Places.CountryCode("United States of America"));
        Assert.Equal("GB", Places.CountryCode("UK"));
        Assert.Null(Places.CountryName("ZZ"));
    }

    [Fact]
    public void Every_us_state_round_trips_between_code_and_name()
    {
        foreach (var code in new[] { "AL", "AK", "CA", "FL", "NY", "TX", "WY", "DC", "PR" })
        {
            var name = Places.UsStateName(code);
            Assert.NotNull(name);
            Assert.Equal(code, Places.UsStateCode(name));
        }
        Assert.Equal("Florida", Places.UsStateName("fl"));
    }

    [Theory]
    [InlineData("john.smith@example.com", "John", "Smith")]
    [InlineData("JOHN_SMITH+news@example.com", "John", "Smith")]
    [InlineData("mary-jane.o.watson@example.com", "Mary", "Watson")]
    [InlineData("jsmith@example.com", "Jsmith", null)]
    [InlineData("john123@example.com", "John", null)]
    [InlineData("12345@example.com", null, null)]
    public void Names_from_the_email_local_part(string email, string? first, string? last)
    {
        Assert.Equal((first, last), Names.FromEmail(email));
    }

    [Fact]
    public void Nested_form_keys_become_objects_and_arrays()
    {
        var (payload, error) = InboundBody.Parse("application/x-www-form-urlencoded; charset=utf-8",
            "email=a%40b.co&products[0][name]=T-Shirt&products[0][price]=55&products[1][name]=Hat+%26+Scarf&tags[]=x&tags[]=y&a[b][c]=d");

        Assert.Null(error);
        Assert.Equal(JsonNode.Parse("""
            {"email":"a@b.co","products":[{"name":"T-Shirt","price":"55"},{"name":"Hat & Scarf"}],"tags":["x","y"],"a":{"b":{"c":"d"}}}
            """)!.ToJsonString(), payload!.ToJsonString());
    }

    [Fact]
    public void Time_is_described_relative_to_now()
    {
        var now = new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
        Assert.Equal("just now", TimeAgo.Describe(now.AddSeconds(-59), now));
        Assert.Equal("1 minute ago", TimeAgo.Describe(now.AddSeconds(-60), now));
        Assert.Equal("3 minutes ago", TimeAgo.Describe(now.AddMinutes(-3), now));
        Assert.Equal("2 hours ago", TimeAgo.Describe(now.AddHours(-2), now));
        Assert.Equal("1 day ago", TimeAgo.Describe(now.AddDays(-1), now));
        Assert.Equal("2 weeks ago", TimeAgo.Describe(now.AddDays(-14), now));
    }
}
