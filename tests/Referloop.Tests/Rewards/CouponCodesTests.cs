using Referloop.Rewards;

namespace Referloop.Tests.Rewards;

public class CouponCodesTests
{
    [Fact]
    public void Csv_takes_one_code_a_line_with_header_blank_lines_crlf_quotes_and_bom()
    {
        var (codes, errors) = CouponCodes.ParseCsv("\uFEFFcode\r\nWELCOME-001\r\n\r\n  WELCOME-002  \n\"WEL,COME \"\"3\"\"\"\nWELCOME-004,10%\n\n");

        Assert.Empty(errors);
        Assert.Equal(["WELCOME-001", "WELCOME-002", "WEL,COME \"3\"", "WELCOME-004"], codes);
    }

    [Fact]
    public void Csv_without_a_header_keeps_every_line_and_repeats()
    {
        var (codes, errors) = CouponCodes.ParseCsv("A1\nA2\nA1");

        Assert.Empty(errors);
        Assert.Equal(["A1", "A2", "A1"], codes);
    }

    [Fact]
    public void Csv_names_the_line_of_a_bad_code()
    {
        var (_, errors) = CouponCodes.ParseCsv($"code\nOK-1\n{new string('X', 101)}\n\"open quote\nBAD\u0007BELL");

        Assert.Equal(["line 3", "line 4", "line 5"], errors.Keys.Order());
    }

    [Fact]
    public void Json_names_the_index_of_a_bad_code()
    {
        var (codes, errors) = CouponCodes.ParseJson("""{ "codes": ["A", "", null, " B "] }""");

        Assert.Equal(["A", "B"], codes);
        Assert.Equal(["codes[1]", "codes[2]"], errors.Keys.Order());
    }

    [Theory]
    [InlineData("""{ "codes": "A" }""", "codes")]
    [InlineData("""{ "other": [] }""", "codes")]
    [InlineData("""not json""", "body")]
    public void Json_of_the_wrong_shape_is_named(string body, string field)
    {
        var (_, errors) = CouponCodes.ParseJson(body);
        Assert.Contains(field, errors.Keys);
    }

    [Theory]
    [InlineData("SUMMER-20", "SUMMER-20")]
    [InlineData(" café 10 € ", "café 10 €")]
    [InlineData("", null)]
    [InlineData("   ", null)]
    [InlineData("TAB\tINSIDE", null)]
    public void Codes_are_1_to_100_printable_characters(string code, string? expected) =>
        Assert.Equal(expected, CouponCodes.Clean(code));
}
