using Microsoft.Extensions.Configuration;
using Referloop.Email;
using Referloop.HostedPages;

namespace Referloop.Tests.Email;

/// <summary>The settings check and the template rules, without a server.</summary>
public sealed class EmailRulesTests
{
    private static List<string> Problems(Dictionary<string, string?> settings) =>
        EmailOptions.Problems(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

    [Fact]
    public void Email_is_off_and_unchecked_without_a_host()
    {
        Assert.Empty(Problems(new() { ["Email:Smtp:Port"] = "nonsense", ["Email:From:Address"] = "" }));
    }

    [Fact]
    public void Each_wrong_setting_is_named_by_its_key()
    {
        var problems = Problems(new()
        {
            ["Email:Smtp:Host"] = "smtp.example.com",
            ["Email:Smtp:Port"] = "99999",
            ["Email:Smtp:Security"] = "tls",
            ["Email:Smtp:Username"] = "shop",
        });

        Assert.Equal(4, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("Email:Smtp:Port is '99999'"));
        Assert.Contains(problems, p => p.StartsWith("Email:Smtp:Security is 'tls'; use one of starttls, ssl, none."));
        Assert.Contains(problems, p => p.StartsWith("Email:Smtp:Username and Email:Smtp:Password go together"));
        Assert.Contains(problems, p => p.StartsWith("Email:From:Address is not set."));
        Assert.Contains("'not an address'", Assert.Single(Problems(new()
        {
            ["Email:Smtp:Host"] = "smtp.example.com",
            ["Email:From:Address"] = "not an address",
        })));
        Assert.Empty(Problems(new()
        {
            ["Email:Smtp:Host"] = "smtp.example.com",
            ["Email:Smtp:Security"] = "SSL",
            ["Email:From:Address"] = "referrals@shop.example.com",
        }));
    }

    [Fact]
    public void The_port_follows_the_security_unless_given()
    {
        Assert.Equal(587, new EmailOptions.SmtpOptions().PortOrDefault);
        Assert.Equal(465, new EmailOptions.SmtpOptions { Security = "ssl" }.PortOrDefault);
        Assert.Equal(2525, new EmailOptions.SmtpOptions { Security = "none", Port = 2525 }.PortOrDefault);
    }

    private static readonly Dictionary<string, string> Values = new()
    {
        ["firstName"] = "Ann",
        ["campaignName"] = "Spring",
        ["shareUrl"] = "https://r.example/r/abc",
        ["couponCode"] = "",
        ["rewardDescription"] = "10 USD",
        ["unsubscribeUrl"] = "https://r.example/unsubscribe/t",
    };

    [Fact]
    public void A_line_whose_placeholders_are_all_empty_is_left_out_and_the_unsubscribe_line_is_added()
    {
        var mail = EmailTemplates.Render(EmailKind.Reward, null, new PageText("en"), Values);

        Assert.Equal("You earned a reward: 10 USD", mail.Subject);
        Assert.Equal("""
            Hi Ann,

            you earned a reward in Spring: 10 USD.

            Keep sharing your link to earn more:
            https://r.example/r/abc

            -- 
            No more of these e-mails: https://r.example/unsubscribe/t

            """.ReplaceLineEndings("\n"), mail.Text);
        Assert.Null(mail.Html);
    }

    [Fact]
    public void German_defaults_and_a_partial_template_fall_back_part_by_part()
    {
        var mail = EmailTemplates.Render(EmailKind.Reward, new EmailTemplate { Subject = "Danke, {firstName}!\n" },
            new PageText("de"), Values);

        Assert.Equal("Danke, Ann!", mail.Subject);
        Assert.StartsWith("Hallo Ann,\n\ndu hast bei Spring eine Prämie erhalten: 10 USD.", mail.Text);
        Assert.EndsWith("Keine solchen E-Mails mehr: https://r.example/unsubscribe/t\n", mail.Text);
    }

    [Fact]
    public void The_magic_link_never_carries_an_unsubscribe_line()
    {
        var mail = EmailTemplates.Render(EmailKind.MagicLink, null, new PageText("en"),
            new Dictionary<string, string>(Values) { ["portalUrl"] = "https://r.example/p/pt_x" });

        Assert.Contains("https://r.example/p/pt_x", mail.Text);
        Assert.DoesNotContain("unsubscribe", mail.Text);
    }

    [Fact]
    public void Names_without_a_name_are_greeted_in_the_page_language()
    {
        Assert.Equal("there", EmailTemplates.FirstName(null, new PageText("en")));
        Assert.Equal("zusammen", EmailTemplates.FirstName(" ", new PageText("de")));
        Assert.Equal("Ann", EmailTemplates.FirstName(" Ann Lee ", new PageText("en")));
    }
}
