using Referloop.Fraud;

namespace Referloop.Tests.Fraud;

public class EmailIdentityTests
{
    [Theory]
    [InlineData("Ann@Example.com", "ann@example.com")]
    [InlineData("  ann+promo@example.com ", "ann@example.com")]
    [InlineData("a.n.n@gmail.com", "ann@gmail.com")]
    [InlineData("A.N.N+x+y@GoogleMail.com", "ann@gmail.com")]
    [InlineData("ann.lee@example.com", "ann.lee@example.com")]
    [InlineData("+tag@example.com", "+tag@example.com")]
    [InlineData("ann@gmail.com.", "ann@gmail.com")]
    [InlineData("not-an-email", "not-an-email")]
    public void Normalises_case_plus_tags_and_gmail_dots_and_alias(string email, string expected) =>
        Assert.Equal(expected, EmailIdentity.Normalise(email));

    [Fact]
    public void Dots_count_outside_gmail()
    {
        Assert.NotEqual(EmailIdentity.Normalise("ann.lee@example.com"), EmailIdentity.Normalise("annlee@example.com"));
    }

    [Theory]
    [InlineData("bob@Mail.Example.COM", "mail.example.com")]
    [InlineData("bob@example.com.", "example.com")]
    [InlineData("bob", "")]
    public void Takes_the_domain(string email, string expected) => Assert.Equal(expected, EmailIdentity.Domain(email));

    [Theory]
    [InlineData("spam.example", "spam.example", true)]
    [InlineData("a.b.spam.example", "spam.example", true)]
    [InlineData("notspam.example", "spam.example", false)]
    [InlineData("spam.example.org", "spam.example", false)]
    public void A_domain_is_within_itself_and_its_parents(string domain, string parent, bool within) =>
        Assert.Equal(within, EmailIdentity.IsWithin(domain, parent));
}
