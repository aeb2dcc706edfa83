using Referloop.Fraud;

namespace Referloop.Tests.Fraud;

public class DisposableDomainsTests
{
    [Fact]
    public void The_shipped_list_is_loaded()
    {
        Assert.True(DisposableDomains.Count > 5_000, $"only {DisposableDomains.Count} domains loaded");
    }

    [Theory]
    [InlineData("mailinator.com", "mailinator.com")]
    [InlineData("MAILINATOR.COM.", "mailinator.com")]
    [InlineData("x7.mailinator.com", "mailinator.com")]
    [InlineData("guerrillamail.com", "guerrillamail.com")]
    public void Matches_listed_domains_and_their_subdomains(string domain, string listed)
    {
        Assert.True(DisposableDomains.IsDisposable(domain, out var match));
        Assert.Equal(listed, match);
    }

    [Theory]
    [InlineData("gmail.com")]
    [InlineData("example.com")]
    [InlineData("com")]
    [InlineData("mailinator.com.example")]
    [InlineData("")]
    public void Leaves_ordinary_domains_alone(string domain) => Assert.False(DisposableDomains.IsDisposable(domain, out _));
}
