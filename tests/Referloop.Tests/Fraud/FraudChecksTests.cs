using Referloop.Campaigns;
using Referloop.Fraud;

namespace Referloop.Tests.Fraud;

/// <summary>The rules of <see cref="FraudChecks.Evaluate"/> over plain objects; loading is in <see cref="FraudFactsTests"/>.</summary>
public class FraudChecksTests
{
    /// <summary>Every check off, so each test switches on only the one it is about.</summary>
    private static readonly FraudPolicy Off = new()
    {
        SelfReferral = FraudAction.Allow,
        SameIp = FraudAction.Allow,
        DisposableEmail = FraudAction.Allow,
        CouponCycling = FraudAction.Allow,
        BrowserConversions = BrowserConversions.Accept,
    };

    private const string Ann = "ann@gmail.com";

    private static FriendSignals Friend(string email = "bob@example.net", string? ip = null, string? clickId = null,
        string? coupon = null, bool browser = false) =>
        new(email, ip, clickId, "Mozilla/5.0", coupon, browser);

    private static FraudVerdict Evaluate(FraudPolicy policy, FriendSignals friend, FraudFacts? facts = null,
        string advocateEmail = Ann) =>
        FraudChecks.Evaluate(policy, advocateEmail, friend, facts ?? FraudFacts.None);

    /// <summary>The actions of the findings when one check trips with <paramref name="action"/>: none when it is off.</summary>
    private static FraudAction[] ActionsOf(FraudAction action) => action == FraudAction.Allow ? [] : [action];

    [Fact]
    public void A_clean_referral_has_no_findings()
    {
        var verdict = Evaluate(new FraudPolicy
        {
            SameIp = FraudAction.Block,
            BlockedEmails = ["*@spam.example"],
            BlockedIps = ["203.0.113.0/24"],
            MaxReferralsPerHour = 5,
        }, Friend("bob@example.net", "198.51.100.20", "clk_1", coupon: "NOT-ANNS"), new FraudFacts
        {
            ClickIp = "198.51.100.21",
            AdvocateIps = ["192.0.2.10"],
            AdvocateCouponCodes = ["ANN-OWN-1"],
            AdvocateFriendsLastHour = 4,
        });

        Assert.Empty(verdict.Findings);
        Assert.False(verdict.Blocked);
        Assert.False(verdict.Flagged);
    }

    [Fact]
    public void With_every_check_off_nothing_trips_whatever_the_facts()
    {
        var verdict = Evaluate(Off, Friend("A.n.N+2@mailinator.com", "198.51.100.20", "clk_1", "ANN-OWN-1", browser: true),
            new FraudFacts
            {
                ClickIp = "198.51.100.20",
                AdvocateIps = ["198.51.100.20"],
                AdvocateCouponCodes = ["ANN-OWN-1"],
                AdvocateFriendsLastHour = 1000,
            }, "ann@mailinator.com");

        Assert.Empty(verdict.Findings);
    }

    [Fact]
    public void The_default_policy_blocks_self_referral_disposable_email_and_coupon_cycling_and_reviews_browser_conversions()
    {
        var verdict = Evaluate(new FraudPolicy(), Friend("ann+2@mailinator.com", "198.51.100.20", coupon: "ANN-1", browser: true),
            new FraudFacts { AdvocateIps = ["198.51.100.20"], AdvocateCouponCodes = ["ANN-1"], AdvocateFriendsLastHour = 1000 },
            "ann@mailinator.com");

        Assert.Equal(
            [
                (FraudCheck.BrowserReported, FraudAction.Flag),
                (FraudCheck.SelfReferral, FraudAction.Block),
                (FraudCheck.DisposableEmail, FraudAction.Block),
                (FraudCheck.CouponCycling, FraudAction.Block),
            ],
            verdict.Findings.Select(f => (f.Check, f.Action)));
    }

    // ---------------------------------------------------------------- selfReferral

    [Theory]
    [InlineData("ann@gmail.com")]
    [InlineData("A.n.N@gmail.com")]
    [InlineData("ann+second@gmail.com")]
    [InlineData("A.n.N+second@GoogleMail.com")]
    [InlineData("  ann@gmail.com. ")]
    public void Self_referral_through_gmail_dots_plus_tags_and_alias_is_blocked_with_its_reason(string friendEmail)
    {
        var verdict = Evaluate(Off with { SelfReferral = FraudAction.Block }, Friend(friendEmail));

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal(FraudCheck.SelfReferral, finding.Check);
        Assert.Equal(FraudAction.Block, finding.Action);
        Assert.Equal("friend's email normalises to the advocate's: ann@gmail.com", finding.Reason);
        Assert.True(verdict.Blocked);
    }

    [Theory]
    [InlineData("carl+1@example.com", true)]
    [InlineData("Carl@Example.com", true)]
    [InlineData("c.arl@example.com", false)] // dots count outside Gmail
    [InlineData("carl@example.org", false)]
    public void Plus_tags_are_dropped_at_every_provider_and_dots_only_at_gmail(string friendEmail, bool trips)
    {
        var verdict = Evaluate(Off with { SelfReferral = FraudAction.Flag }, Friend(friendEmail), advocateEmail: "carl@example.com");

        Assert.Equal(trips, verdict.Flagged);
        Assert.Equal(trips ? 1 : 0, verdict.Findings.Count);
    }

    [Theory]
    [InlineData(FraudAction.Block, true, false)]
    [InlineData(FraudAction.Flag, false, true)]
    [InlineData(FraudAction.Allow, false, false)]
    public void The_self_referral_action_is_the_policys(FraudAction action, bool blocked, bool flagged)
    {
        var verdict = Evaluate(Off with { SelfReferral = action }, Friend(Ann));

        Assert.Equal(blocked, verdict.Blocked);
        Assert.Equal(flagged, verdict.Flagged);
        Assert.Equal(ActionsOf(action), verdict.Findings.Select(f => f.Action));
    }

    // ---------------------------------------------------------------- blockedEmails

    [Theory]
    [InlineData("mallory@example.com", "mallory@example.com")]
    [InlineData("Mallory+x@Example.com", "mallory@example.com")]
    [InlineData("bob@spam.example", "*@spam.example")]
    [InlineData("bob@eu.spam.example", "*@spam.example")]
    [InlineData("bob@junk.example", "junk.example")]
    [InlineData("bob@mx.junk.example", "junk.example")]
    public void Blocked_emails_match_addresses_patterns_domains_and_subdomains(string friendEmail, string entry)
    {
        var verdict = Evaluate(Off with { BlockedEmails = ["mallory@example.com", "*@spam.example", "junk.example"] }, Friend(friendEmail));

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal(FraudCheck.BlockedEmail, finding.Check);
        Assert.Equal($"friend's email {friendEmail} matches the blocked entry '{entry}'", finding.Reason);
    }

    [Theory]
    [InlineData("bob@example.net")]
    [InlineData("bob@notspam.example")]
    [InlineData("mallory2@example.com")]
    public void Addresses_outside_the_blocked_entries_pass(string friendEmail) =>
        Assert.Empty(Evaluate(Off with { BlockedEmails = ["mallory@example.com", "*@spam.example"] }, Friend(friendEmail)).Findings);

    [Fact]
    public void Blocked_emails_block_the_friend_then_the_advocate_whatever_the_policy_actions()
    {
        var policy = Off with
        {
            SelfReferral = FraudAction.Flag,
            BlockedEmails = ["*@spam.example", "mallory@example.com"],
        };

        var verdict = Evaluate(policy, Friend(" bob@eu.spam.example "), advocateEmail: "mallory@example.com");

        Assert.True(verdict.Blocked);
        Assert.Equal(
            [
                "friend's email bob@eu.spam.example matches the blocked entry '*@spam.example'",
                "advocate's email mallory@example.com matches the blocked entry 'mallory@example.com'",
            ],
            verdict.Findings.Select(f => f.Reason));
        Assert.All(verdict.Findings, f => Assert.Equal((FraudCheck.BlockedEmail, FraudAction.Block), (f.Check, f.Action)));
    }

    // ---------------------------------------------------------------- disposableEmail

    [Fact]
    public void Disposable_email_domains_and_their_subdomains_trip_the_check()
    {
        var policy = Off with { DisposableEmail = FraudAction.Flag };

        var direct = Evaluate(policy, Friend("bob@mailinator.com"));
        var sub = Evaluate(policy, Friend("bob@x7.Mailinator.com"));
        var ordinary = Evaluate(policy, Friend("bob@example.net"));

        Assert.Equal("friend's email domain mailinator.com is a disposable-email provider", Assert.Single(direct.Findings).Reason);
        Assert.Equal("friend's email domain x7.mailinator.com belongs to the disposable-email provider mailinator.com",
            Assert.Single(sub.Findings).Reason);
        Assert.True(direct.Flagged);
        Assert.Equal(FraudCheck.DisposableEmail, sub.Findings[0].Check);
        Assert.Empty(ordinary.Findings);
    }

    [Theory]
    [InlineData(FraudAction.Block)]
    [InlineData(FraudAction.Flag)]
    [InlineData(FraudAction.Allow)]
    public void The_disposable_email_action_is_the_policys_and_only_the_friends_domain_counts(FraudAction action)
    {
        var policy = Off with { DisposableEmail = action };

        var verdict = Evaluate(policy, Friend("bob@mailinator.com"));

        Assert.Equal(ActionsOf(action), verdict.Findings.Select(f => f.Action));
        Assert.Empty(Evaluate(policy, Friend("bob@example.net"), advocateEmail: "ann@mailinator.com").Findings);
    }

    // ---------------------------------------------------------------- blockedIps

    [Theory]
    [InlineData("203.0.113.7", "203.0.113.7", "203.0.113.0/24")]
    [InlineData("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.0/24")]
    [InlineData(" 203.0.113.255 ", "203.0.113.255", "203.0.113.0/24")]
    [InlineData("198.51.100.9", "198.51.100.9", "198.51.100.9")]
    [InlineData("2001:DB8:0:0::42", "2001:db8::42", "2001:db8::/32")]
    [InlineData("2001:0db8:ffff::1", "2001:db8:ffff::1", "2001:db8::/32")]
    public void Blocked_ips_match_single_addresses_and_cidr_ranges_in_canonical_form(string friendIp, string canonical, string entry)
    {
        var verdict = Evaluate(Off with { BlockedIps = ["203.0.113.0/24", "198.51.100.9", "2001:db8::/32"] }, Friend(ip: friendIp));

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal((FraudCheck.BlockedIp, FraudAction.Block), (finding.Check, finding.Action));
        Assert.Equal($"friend's IP {canonical} matches the blocked entry '{entry}'", finding.Reason);
    }

    [Theory]
    [InlineData("203.0.114.0")]
    [InlineData("198.51.100.10")]
    [InlineData("2001:db9::1")]
    [InlineData("not an ip")]
    [InlineData(null)]
    public void Addresses_outside_the_blocked_ips_pass(string? friendIp) =>
        Assert.Empty(Evaluate(Off with { BlockedIps = ["203.0.113.0/24", "198.51.100.9", "2001:db8::/32"] }, Friend(ip: friendIp)).Findings);

    [Fact]
    public void A_blocked_click_ip_is_reported_in_canonical_form_with_the_click()
    {
        var verdict = Evaluate(Off with { BlockedIps = ["203.0.113.0/24"] }, Friend(ip: "198.51.100.1", clickId: "clk_9"),
            new FraudFacts { ClickIp = "::ffff:203.0.113.9" });

        Assert.Equal("friend's click clk_9 came from 203.0.113.9, which matches the blocked entry '203.0.113.0/24'",
            Assert.Single(verdict.Findings).Reason);
        Assert.True(verdict.Blocked);
    }

    [Fact]
    public void A_click_from_the_friends_own_blocked_ip_is_reported_once()
    {
        var verdict = Evaluate(Off with { BlockedIps = ["203.0.113.0/24"] }, Friend(ip: "203.0.113.9", clickId: "clk_9"),
            new FraudFacts { ClickIp = "::ffff:203.0.113.9" });

        Assert.Equal("friend's IP 203.0.113.9 matches the blocked entry '203.0.113.0/24'", Assert.Single(verdict.Findings).Reason);
    }

    [Fact]
    public void Blocked_friend_click_and_advocate_ips_are_each_reported_the_advocates_first_match_only()
    {
        var verdict = Evaluate(Off with { BlockedIps = ["203.0.113.0/24", "2001:db8::/32"] },
            Friend(ip: "203.0.113.1", clickId: "clk_9"),
            new FraudFacts { ClickIp = "203.0.113.2", AdvocateIps = ["192.0.2.1", "2001:db8::42", "203.0.113.3"] });

        Assert.Equal(
            [
                "friend's IP 203.0.113.1 matches the blocked entry '203.0.113.0/24'",
                "friend's click clk_9 came from 203.0.113.2, which matches the blocked entry '203.0.113.0/24'",
                "advocate used the IP 2001:db8::42, which matches the blocked entry '2001:db8::/32'",
            ],
            verdict.Findings.Select(f => f.Reason));
        Assert.All(verdict.Findings, f => Assert.Equal((FraudCheck.BlockedIp, FraudAction.Block), (f.Check, f.Action)));
    }

    [Fact]
    public void Blocked_ips_block_whatever_the_same_ip_action()
    {
        var facts = new FraudFacts { AdvocateIps = ["203.0.113.3"] };

        var verdict = Evaluate(Off with { SameIp = FraudAction.Allow, BlockedIps = ["203.0.113.3"] }, Friend(ip: "192.0.2.1"), facts);

        Assert.Equal("advocate used the IP 203.0.113.3, which matches the blocked entry '203.0.113.3'", Assert.Single(verdict.Findings).Reason);
        Assert.True(verdict.Blocked);
    }

    // ---------------------------------------------------------------- sameIp

    [Theory]
    [InlineData("198.51.100.20", "198.51.100.20")]
    [InlineData("::ffff:198.51.100.20", "198.51.100.20")]
    [InlineData("2001:db8::1", "2001:DB8:0000::1")]
    [InlineData("2001:0db8::0001", "2001:db8::1")]
    public void Same_ip_compares_canonical_forms_of_the_friends_and_the_advocates_ips(string advocateIp, string friendIp)
    {
        var verdict = Evaluate(Off with { SameIp = FraudAction.Flag }, Friend(ip: friendIp),
            new FraudFacts { AdvocateIps = ["192.0.2.1", advocateIp] });

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal((FraudCheck.SameIp, FraudAction.Flag), (finding.Check, finding.Action));
        Assert.Equal($"friend's IP {BlockLists.CanonicalIp(advocateIp)} is one the advocate used", finding.Reason);
        Assert.True(verdict.Flagged);
    }

    [Fact]
    public void Same_ip_trips_on_the_friends_click_when_the_friends_own_ip_is_elsewhere()
    {
        var policy = Off with { SameIp = FraudAction.Block };
        var facts = new FraudFacts { ClickIp = "::ffff:198.51.100.20", AdvocateIps = ["198.51.100.20"] };

        var byClick = Evaluate(policy, Friend(ip: "192.0.2.99", clickId: "clk_7"), facts);
        var noIp = Evaluate(policy, Friend(ip: null, clickId: "clk_7"), facts);

        Assert.Equal("friend's click clk_7 came from 198.51.100.20, an IP the advocate used", Assert.Single(byClick.Findings).Reason);
        Assert.Equal(byClick.Findings, noIp.Findings);
        Assert.True(byClick.Blocked);
    }

    [Fact]
    public void Same_ip_reports_the_friends_own_ip_before_the_click_and_only_once()
    {
        var verdict = Evaluate(Off with { SameIp = FraudAction.Flag }, Friend(ip: "198.51.100.20", clickId: "clk_7"),
            new FraudFacts { ClickIp = "198.51.100.21", AdvocateIps = ["198.51.100.21", "198.51.100.20"] });

        Assert.Equal("friend's IP 198.51.100.20 is one the advocate used", Assert.Single(verdict.Findings).Reason);
    }

    [Fact]
    public void Same_ip_passes_when_the_advocate_has_no_known_ips_or_the_friend_comes_from_elsewhere()
    {
        var policy = Off with { SameIp = FraudAction.Block };

        Assert.Empty(Evaluate(policy, Friend(ip: "198.51.100.20", clickId: "clk_7"), new FraudFacts { ClickIp = "198.51.100.20" }).Findings);
        Assert.Empty(Evaluate(policy, Friend(ip: "192.0.2.99", clickId: "clk_7"),
            new FraudFacts { ClickIp = "192.0.2.98", AdvocateIps = ["198.51.100.20"] }).Findings);
        Assert.Empty(Evaluate(policy, Friend(ip: "not an ip"), new FraudFacts { AdvocateIps = ["198.51.100.20"] }).Findings);
    }

    [Theory]
    [InlineData(FraudAction.Block)]
    [InlineData(FraudAction.Flag)]
    [InlineData(FraudAction.Allow)]
    public void The_same_ip_action_is_the_policys(FraudAction action)
    {
        var verdict = Evaluate(Off with { SameIp = action }, Friend(ip: "198.51.100.20"), new FraudFacts { AdvocateIps = ["198.51.100.20"] });

        Assert.Equal(ActionsOf(action), verdict.Findings.Select(f => f.Action));
    }

    // ---------------------------------------------------------------- couponCycling

    [Theory]
    [InlineData("ANN-OWN-1")]
    [InlineData("ann-own-1")]
    [InlineData(" Ann-Own-1 ")]
    public void Coupon_cycling_trips_when_the_friend_uses_a_code_issued_to_the_advocate_in_any_case(string used)
    {
        var verdict = Evaluate(Off with { CouponCycling = FraudAction.Block }, Friend(coupon: used),
            new FraudFacts { AdvocateCouponCodes = ["OTHER-9", "ANN-OWN-1"] });

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal((FraudCheck.CouponCycling, FraudAction.Block), (finding.Check, finding.Action));
        Assert.Equal("friend used the coupon ANN-OWN-1, which was issued to the advocate", finding.Reason);
    }

    [Theory]
    [InlineData("OTHER-1")]
    [InlineData("ANN-OWN-10")]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData(null)]
    public void Coupon_cycling_passes_codes_not_issued_to_the_advocate_and_purchases_without_one(string? used) =>
        Assert.Empty(Evaluate(Off with { CouponCycling = FraudAction.Block }, Friend(coupon: used),
            new FraudFacts { AdvocateCouponCodes = ["ANN-OWN-1"] }).Findings);

    [Theory]
    [InlineData(FraudAction.Block)]
    [InlineData(FraudAction.Flag)]
    [InlineData(FraudAction.Allow)]
    public void The_coupon_cycling_action_is_the_policys(FraudAction action)
    {
        var verdict = Evaluate(Off with { CouponCycling = action }, Friend(coupon: "ANN-OWN-1"),
            new FraudFacts { AdvocateCouponCodes = ["ANN-OWN-1"] });

        Assert.Equal(ActionsOf(action), verdict.Findings.Select(f => f.Action));
    }

    // ---------------------------------------------------------------- maxReferralsPerHour

    [Theory]
    [InlineData(0, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(7, true)]
    public void Velocity_blocks_once_the_advocate_brought_the_hourly_limit(int lastHour, bool blocks)
    {
        var verdict = Evaluate(Off with { MaxReferralsPerHour = 3 }, Friend(), new FraudFacts { AdvocateFriendsLastHour = lastHour });

        Assert.Equal(blocks, verdict.Blocked);
        if (blocks)
        {
            var finding = Assert.Single(verdict.Findings);
            Assert.Equal((FraudCheck.Velocity, FraudAction.Block), (finding.Check, finding.Action));
            Assert.Equal($"the advocate already brought {lastHour} referrals in the last hour (limit 3 an hour)", finding.Reason);
        }
        else
        {
            Assert.Empty(verdict.Findings);
        }
    }

    [Fact]
    public void Without_a_limit_velocity_is_not_checked() =>
        Assert.Empty(Evaluate(Off, Friend(), new FraudFacts { AdvocateFriendsLastHour = 10_000 }).Findings);

    // ---------------------------------------------------------------- browserConversions

    [Theory]
    [InlineData(BrowserConversions.Review, true, true)]
    [InlineData(BrowserConversions.Review, false, false)]
    [InlineData(BrowserConversions.Confirm, true, false)]
    [InlineData(BrowserConversions.Accept, true, false)]
    public void A_browser_reported_conversion_is_flagged_only_when_the_campaign_reviews_them(BrowserConversions policy,
        bool fromBrowser, bool flagged)
    {
        var verdict = Evaluate(Off with { BrowserConversions = policy }, Friend(browser: fromBrowser));

        Assert.Equal(flagged, verdict.Flagged);
        if (flagged)
        {
            var finding = Assert.Single(verdict.Findings);
            Assert.Equal((FraudCheck.BrowserReported, FraudAction.Flag), (finding.Check, finding.Action));
            Assert.Equal("the conversion was reported from a browser with the publishable key; the campaign holds those for review",
                finding.Reason);
        }
        else
        {
            Assert.Empty(verdict.Findings);
        }
    }

    // ---------------------------------------------------------------- together

    [Fact]
    public void A_block_beats_a_flag()
    {
        var policy = Off with { SelfReferral = FraudAction.Flag, MaxReferralsPerHour = 1, BrowserConversions = BrowserConversions.Review };

        var verdict = Evaluate(policy, Friend(Ann, browser: true), new FraudFacts { AdvocateFriendsLastHour = 1 });

        Assert.True(verdict.Blocked);
        Assert.False(verdict.Flagged);
        Assert.Equal([FraudAction.Flag, FraudAction.Flag, FraudAction.Block], verdict.Findings.Select(f => f.Action));
    }

    [Fact]
    public void Every_tripped_check_is_listed_in_a_fixed_order()
    {
        var policy = new FraudPolicy
        {
            SelfReferral = FraudAction.Flag,
            SameIp = FraudAction.Flag,
            DisposableEmail = FraudAction.Block,
            CouponCycling = FraudAction.Flag,
            BlockedEmails = ["eve@mailinator.com"],
            BlockedIps = ["198.51.100.20"],
            MaxReferralsPerHour = 2,
            BrowserConversions = BrowserConversions.Review,
        };

        var verdict = Evaluate(policy, Friend("eve+2@mailinator.com", "198.51.100.20", coupon: "eve-1", browser: true),
            new FraudFacts { AdvocateIps = ["198.51.100.20"], AdvocateCouponCodes = ["EVE-1"], AdvocateFriendsLastHour = 2 },
            "eve@mailinator.com");

        Assert.Equal(
            [
                FraudCheck.BrowserReported, FraudCheck.SelfReferral, FraudCheck.BlockedEmail, FraudCheck.BlockedEmail,
                FraudCheck.DisposableEmail, FraudCheck.BlockedIp, FraudCheck.BlockedIp, FraudCheck.SameIp,
                FraudCheck.CouponCycling, FraudCheck.Velocity,
            ],
            verdict.Findings.Select(f => f.Check));
        Assert.True(verdict.Blocked);
        Assert.False(verdict.Flagged);
    }
}
