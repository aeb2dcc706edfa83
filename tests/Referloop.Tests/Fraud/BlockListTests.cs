using Referloop.Fraud;

namespace Referloop.Tests.Fraud;

public class BlockListTests
{
    [Theory]
    [InlineData("bob@spam.example", "*@spam.example")]
    [InlineData("bob@eu.spam.example", "*@spam.example")]
    [InlineData("Bob@Junk.Example", "junk.example")]
    [InlineData("bob@x.junk.example", "junk.example")]
    [InlineData("b.o.b+again@gmail.com", "bob@gmail.com")]
    [InlineData("EVE@example.org", "eve@example.org")]
    public void Blocks_addresses_domains_and_their_subdomains(string email, string entry) =>
        Assert.Equal(entry, BlockLists.MatchEmail(["*@other.example", entry], email));

    [Theory]
    [InlineData("bob@notspam.example")]
    [InlineData("bob@spam.example.org")]
    [InlineData("bobby@gmail.com")]
    [InlineData("eve2@example.org")]
    public void Leaves_other_addresses_alone(string email) =>
        Assert.Null(BlockLists.MatchEmail(["*@spam.example", "junk.example", "bob@gmail.com", "eve@example.org"], email));

    [Theory]
    [InlineData("203.0.113.7", "203.0.113.7")]
    [InlineData("198.51.100.20", "198.51.100.0/24")]
    [InlineData("::ffff:198.51.100.99", "198.51.100.0/24")]
    [InlineData("2001:db8::1", "2001:db8::/32")]
    [InlineData("2001:DB8:0:0::5", "2001:db8::5")]
    public void Blocks_addresses_and_cidr_ranges(string ip, string entry) =>
        Assert.Equal(entry, BlockLists.MatchIp(["192.0.2.1", entry], ip));

    [Theory]
    [InlineData("198.51.101.1")]
    [InlineData("2001:db9::1")]
    [InlineData("not an ip")]
    [InlineData(null)]
    public void Leaves_other_ips_alone(string? ip) =>
        Assert.Null(BlockLists.MatchIp(["198.51.100.0/24", "2001:db8::/32", "203.0.113.7"], ip));

    [Fact]
    public void Canonical_ips_fold_mapped_ipv4_and_ipv6_spelling()
    {
        Assert.Equal("127.0.0.1", BlockLists.CanonicalIp("::ffff:127.0.0.1"));
        Assert.Equal("2001:db8::1", BlockLists.CanonicalIp("2001:0DB8:0000::1"));
        Assert.Null(BlockLists.CanonicalIp("localhost"));
    }
}
