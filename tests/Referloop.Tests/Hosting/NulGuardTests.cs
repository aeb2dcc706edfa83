using System.Net;
using Referloop.Tests.Support;

namespace Referloop.Tests.Hosting;

/// <summary>
/// A NUL character (<c>%00</c>) in an address or a posted form is a 400, on every route: PostgreSQL's text refuses it,
/// so it reached a query as a 500.
/// </summary>
public class NulGuardTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Theory]
    [InlineData("/api/v1/referrals?campaignId=%00")]
    [InlineData("/api/v1/campaigns/cmp_x/participants?search=a%00b")]
    public async Task A_nul_in_the_address_is_a_400(string url)
    {
        var response = await _admin.GetAsync(url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_cursor_that_decodes_to_a_nul_is_no_cursor()
    {
        // "AA" is the single byte 0 in base64url.
        var response = await _admin.GetAsync("/api/v1/campaigns?cursor=AA");

        await response.AssertValidationProblem("cursor");
    }

    [Fact]
    public async Task A_nul_in_a_posted_form_is_a_400()
    {
        using var form = new FormUrlEncodedContent([new("Email", "nul@example.com"), new("Name", "Ann\0Lee")]);

        var response = await app.CreateAnonymousClient().PostAsync("/join/anything", form);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
