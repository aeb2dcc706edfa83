using System.Net;
using System.Text;
using Referloop.Http;
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

    // The JSON guard looks through a body a piece at a time, however the stream hands it over: an escape split between
    // two reads (or two of its 16 KiB pieces) is found, and the body is left at its start for the route.
    [Theory]
    [InlineData(1, true)]
    [InlineData(3, true)]
    [InlineData(7, true)]
    [InlineData(16_384, true)]
    [InlineData(5, false)]
    public async Task The_json_guard_finds_an_escape_split_between_reads(int bytesPerRead, bool nul)
    {
        var json = nul ? $$"""{"a": "{{new string('x', 16_365)}}", "b": "x\u0000"}""" : """{"a": "no NUL here"}""";
        await using var body = new TrickleStream(Encoding.UTF8.GetBytes(json), bytesPerRead);

        Assert.Equal(nul, await NulGuard.HoldsNulEscapeAsync(body, CancellationToken.None));
        Assert.Equal(0, body.Position);
    }

    // The field is found reading the body a piece at a time, however the stream hands it over, as a parse of the whole
    // body into a tree would name it.
    [Theory]
    [InlineData("""{"a": "x\u0000"}""", "a")]
    [InlineData("""{"a": {"b": [1, "ok", null, {"c": "\u0000"}]}, "d": "\u0000"}""", "a.b[3].c")]
    [InlineData("""[["x", true, "\u0000"]]""", "[0][2]")]
    [InlineData("""{"a\u0000b": 1}""", "a\0b")]
    [InlineData("""{"a": "\\u0000"}""", null)]
    [InlineData("""{"a": "\u0000", "a": "ok"}""", "body")]
    [InlineData("""{"a": "\u0000" """, "body")]
    [InlineData("""{"a": "\u0000"} {}""", "body")]
    [InlineData("", "body")]
    public async Task The_json_guard_names_the_field_holding_a_nul(string json, string? field)
    {
        foreach (var most in new[] { 1, 5, 16_384 })
        {
            await using var body = new TrickleStream(Encoding.UTF8.GetBytes(json), most);

            Assert.Equal(field, await NulGuard.FieldWithNulAsync(body, CancellationToken.None));
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(65_536)]
    public async Task The_json_guard_names_the_field_of_a_value_longer_than_its_piece(int bytesPerRead)
    {
        var json = $$"""{"short": "x", "long": ["{{new string('x', 40_000)}}\u0000"]}""";
        await using var body = new TrickleStream(Encoding.UTF8.GetBytes(json), bytesPerRead);

        Assert.Equal("long[0]", await NulGuard.FieldWithNulAsync(body, CancellationToken.None));
    }

    [Fact]
    public async Task A_body_with_the_escape_and_a_name_that_is_not_utf8_is_refused_as_the_body()
    {
        byte[] json = [.. "{\"a"u8, 0xFF, .. "\": \"\\u0000\"}"u8];
        await using var body = new MemoryStream(json);

        Assert.Equal("body", await NulGuard.FieldWithNulAsync(body, CancellationToken.None));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16_384)]
    public async Task A_body_after_a_byte_order_mark_is_walked_as_json(int bytesPerRead)
    {
        byte[] escaped = [0xEF, 0xBB, 0xBF, .. """{"a": "\\u0000"}"""u8];
        byte[] nul = [0xEF, 0xBB, 0xBF, .. """{"a": ["\u0000"]}"""u8];

        Assert.Null(await NulGuard.FieldWithNulAsync(new TrickleStream(escaped, bytesPerRead), CancellationToken.None));
        Assert.Equal("a[0]", await NulGuard.FieldWithNulAsync(new TrickleStream(nul, bytesPerRead), CancellationToken.None));
    }

    /// <summary>A seekable stream that hands over at most a few bytes per read, as a socket may.</summary>
    private sealed class TrickleStream(byte[] bytes, int most) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, most)], ct);
    }
}
