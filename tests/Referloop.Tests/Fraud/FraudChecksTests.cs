using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Tracking;

namespace Referloop.Tests.Fraud;

public class FraudChecksTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    /// <summary>Every check off, so each test switches on only the one it is about.</summary>
    private static readonly FraudPolicy Off = new()
    {
        SelfReferral = FraudAction.Allow,
        SameIp = FraudAction.Allow,
        DisposableEmail = FraudAction.Allow,
        CouponCycling = FraudAction.Allow,
    };

    private static FriendSignals Friend(string email, string? ip = null, string? clickId = null, string? coupon = null) =>
        new(email, ip, clickId, "Mozilla/5.0", coupon);

    private async Task<(Campaign Campaign, Participant Advocate)> Setup(FraudPolicy policy, string advocateEmail = "ann@gmail.com")
    {
        var now = app.Clock.GetUtcNow();
        var campaign = new Campaign
        {
            Id = Ids.New("cmp"),
            Name = "Fraud",
            LandingUrl = "https://shop.example.com/",
            Approval = ApprovalPolicy.Auto,
            Fraud = policy,
            Rewards = [],
            Status = CampaignStatus.Active,
            PublishableKey = Ids.New("pk"),
            CreatedAt = now,
            UpdatedAt = now,
        };
        var advocate = NewParticipant(campaign.Id, advocateEmail, null, now);
        await app.WithDb(async db =>
        {
            db.Campaigns.Add(campaign);
            db.Participants.Add(advocate);
            return await db.SaveChangesAsync();
        });
        return (campaign, advocate);
    }

    private static Participant NewParticipant(string campaignId, string email, string? referredBy, DateTimeOffset at) => new()
    {
        Id = Ids.New("par"),
        CampaignId = campaignId,
        Email = Participant.NormaliseEmail(email),
        Code = Guid.NewGuid().ToString("N")[..12],
        IsReferrer = referredBy is null,
        IsInvited = referredBy is not null,
        ReferredById = referredBy,
        CreatedAt = at,
        UpdatedAt = at,
    };

    private Task<FraudVerdict> Evaluate(Campaign campaign, Participant advocate, FriendSignals friend) =>
        app.WithDb(async db => FraudChecks.Evaluate(campaign.Fraud, advocate.Email, friend,
            await FraudFacts.LoadAsync(db, campaign.Fraud, advocate.Id, friend, app.Clock.GetUtcNow(), CancellationToken.None)));

    private Task RecordIp(string participantId, string ip) =>
        app.WithDb(async db =>
        {
            await FraudSignals.RecordIpAsync(db, participantId, ip, app.Clock.GetUtcNow(), CancellationToken.None);
            return 0;
        });

    private async Task<string> AddClick(Campaign campaign, Participant advocate, string ip)
    {
        var click = new Click
        {
            Id = Ids.New("clk"),
            CampaignId = campaign.Id,
            ParticipantId = advocate.Id,
            Ip = ip,
            CreatedAt = app.Clock.GetUtcNow(),
        };
        await app.WithDb(db =>
        {
            db.Clicks.Add(click);
            return db.SaveChangesAsync();
        });
        return click.Id;
    }

    [Fact]
    public async Task A_clean_referral_has_no_findings()
    {
        var (campaign, advocate) = await Setup(new FraudPolicy
        {
            SameIp = FraudAction.Block,
            BlockedEmails = ["*@spam.example"],
            BlockedIps = ["203.0.113.0/24"],
            MaxReferralsPerHour = 5,
        });
        await RecordIp(advocate.Id, "192.0.2.10");

        var verdict = await Evaluate(campaign, advocate, Friend("bob@example.net", "198.51.100.20", coupon: "NOT-ANNS"));

        Assert.Empty(verdict.Findings);
        Assert.False(verdict.Blocked);
        Assert.False(verdict.Flagged);
    }

    [Fact]
    public async Task Self_referral_through_gmail_dots_plus_tags_and_alias_is_blocked_with_its_reason()
    {
        var (campaign, advocate) = await Setup(Off with { SelfReferral = FraudAction.Block });

        var verdict = await Evaluate(campaign, advocate, Friend("A.n.N+second@GoogleMail.com"));

        var finding = Assert.Single(verdict.Findings);
        Assert.Equal(FraudCheck.SelfReferral, finding.Check);
        Assert.Equal(FraudAction.Block, finding.Action);
        Assert.Equal("friend's email normalises to the advocate's: ann@gmail.com", finding.Reason);
        Assert.True(verdict.Blocked);
    }

    [Fact]
    public async Task A_check_set_to_flag_flags_and_one_set_to_allow_is_not_run()
    {
        var (flagging, advocate) = await Setup(Off with { SelfReferral = FraudAction.Flag }, "carl@example.com");
        var flagged = await Evaluate(flagging, advocate, Friend("carl+1@example.com"));
        Assert.True(flagged.Flagged);
        Assert.False(flagged.Blocked);
        Assert.Equal(FraudAction.Flag, Assert.Single(flagged.Findings).Action);

        var (allowing, advocate2) = await Setup(Off, "dora@example.com");
        Assert.Empty((await Evaluate(allowing, advocate2, Friend("dora@example.com"))).Findings);
    }

    [Fact]
    public async Task Blocked_emails_block_the_friend_or_the_advocate_whatever_the_policy_actions()
    {
        var (campaign, advocate) = await Setup(Off with { BlockedEmails = ["*@spam.example", "mallory@example.com"] }, "mallory@example.com");

        var verdict = await Evaluate(campaign, advocate, Friend("bob@eu.spam.example"));

        Assert.True(verdict.Blocked);
        Assert.Equal(2, verdict.Findings.Count);
        Assert.All(verdict.Findings, f => Assert.Equal(FraudCheck.BlockedEmail, f.Check));
        Assert.Contains(verdict.Findings, f => f.Reason == "friend's email bob@eu.spam.example matches the blocked entry '*@spam.example'");
        Assert.Contains(verdict.Findings, f => f.Reason == "advocate's email mallory@example.com matches the blocked entry 'mallory@example.com'");
    }

    [Fact]
    public async Task Disposable_email_domains_and_their_subdomains_trip_the_check()
    {
        var (campaign, advocate) = await Setup(Off with { DisposableEmail = FraudAction.Flag });

        var direct = await Evaluate(campaign, advocate, Friend("bob@mailinator.com"));
        var sub = await Evaluate(campaign, advocate, Friend("bob@x7.mailinator.com"));
        var ordinary = await Evaluate(campaign, advocate, Friend("bob@example.net"));

        Assert.Equal("friend's email domain mailinator.com is a disposable-email provider", Assert.Single(direct.Findings).Reason);
        Assert.Equal(FraudCheck.DisposableEmail, Assert.Single(sub.Findings).Check);
        Assert.Contains("belongs to the disposable-email provider mailinator.com", sub.Findings[0].Reason);
        Assert.True(direct.Flagged);
        Assert.Empty(ordinary.Findings);
    }

    [Fact]
    public async Task Blocked_ips_cover_the_friend_the_friends_click_and_the_advocate()
    {
        var (campaign, advocate) = await Setup(Off with { BlockedIps = ["203.0.113.0/24", "2001:db8::/32"] });

        var byFriend = await Evaluate(campaign, advocate, Friend("bob@example.net", "203.0.113.7"));
        Assert.Equal("friend's IP 203.0.113.7 matches the blocked entry '203.0.113.0/24'", Assert.Single(byFriend.Findings).Reason);
        Assert.True(byFriend.Blocked);

        var click = await AddClick(campaign, advocate, "::ffff:203.0.113.9");
        var byClick = await Evaluate(campaign, advocate, Friend("bob@example.net", "198.51.100.1", click));
        Assert.Equal($"friend's click {click} came from 203.0.113.9, which matches the blocked entry '203.0.113.0/24'",
            Assert.Single(byClick.Findings).Reason);

        await RecordIp(advocate.Id, "2001:db8::42");
        var byAdvocate = await Evaluate(campaign, advocate, Friend("bob@example.net", "198.51.100.1"));
        var finding = Assert.Single(byAdvocate.Findings);
        Assert.Equal(FraudCheck.BlockedIp, finding.Check);
        Assert.Equal("advocate used the IP 2001:db8::42, which matches the blocked entry '2001:db8::/32'", finding.Reason);
    }

    [Fact]
    public async Task Same_ip_trips_when_the_friend_or_the_friends_click_uses_an_ip_of_the_advocate()
    {
        var (campaign, advocate) = await Setup(Off with { SameIp = FraudAction.Flag });
        await RecordIp(advocate.Id, "198.51.100.20");
        await RecordIp(advocate.Id, "198.51.100.20"); // recorded again: one row, no error

        var sameIp = await Evaluate(campaign, advocate, Friend("bob@example.net", "::ffff:198.51.100.20"));
        var finding = Assert.Single(sameIp.Findings);
        Assert.Equal(FraudCheck.SameIp, finding.Check);
        Assert.Equal(FraudAction.Flag, finding.Action);
        Assert.Equal("friend's IP 198.51.100.20 is one the advocate used", finding.Reason);

        var click = await AddClick(campaign, advocate, "198.51.100.20");
        var sameCookie = await Evaluate(campaign, advocate, Friend("bob@example.net", "192.0.2.99", click));
        Assert.Equal($"friend's click {click} came from 198.51.100.20, an IP the advocate used", Assert.Single(sameCookie.Findings).Reason);

        var elsewhere = await Evaluate(campaign, advocate, Friend("bob@example.net", "192.0.2.99"));
        Assert.Empty(elsewhere.Findings);
        Assert.Equal(1, await app.WithDb(db => db.ParticipantIps.CountAsync(p => p.ParticipantId == advocate.Id)));
    }

    [Fact]
    public async Task Recording_ignores_text_that_is_not_an_ip_and_stores_the_canonical_form()
    {
        var (_, advocate) = await Setup(Off);
        await RecordIp(advocate.Id, "not an ip");
        await RecordIp(advocate.Id, "::ffff:192.0.2.1");
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await RecordIp(advocate.Id, "192.0.2.1");

        var ips = await app.WithDb(db => db.ParticipantIps.AsNoTracking().Where(p => p.ParticipantId == advocate.Id).ToListAsync());
        var ip = Assert.Single(ips);
        Assert.Equal("192.0.2.1", ip.Ip);
        Assert.Equal(TimeSpan.FromMinutes(5), ip.LastSeenAt - ip.FirstSeenAt);
    }

    [Fact]
    public async Task Coupon_cycling_trips_when_the_friend_uses_a_code_issued_to_the_advocate()
    {
        var (campaign, advocate) = await Setup(Off with { CouponCycling = FraudAction.Block });
        await app.WithDb(async db =>
        {
            var pool = new CouponPool { Id = Ids.New("cpl"), CampaignId = campaign.Id, Name = "welcome10", Secret = "whsec_x" };
            db.CouponPools.Add(pool);
            db.Coupons.Add(new Coupon { Id = Ids.New("cpn"), PoolId = pool.Id, Code = "ANN-OWN-1", Source = CouponSource.Upload });
            db.Coupons.Add(new Coupon { Id = Ids.New("cpn"), PoolId = pool.Id, Code = "OTHER-1", Source = CouponSource.Upload });
            return await db.SaveChangesAsync();
        });
        var allocation = await app.WithDb(db => new CouponAllocator(db, new NoHttp(), app.Clock)
            .AllocateAsync(campaign.Id, "welcome10", "rwd_ann_1", advocate.Id, CancellationToken.None));
        Assert.Equal("ANN-OWN-1", allocation.Code);

        var cycled = await Evaluate(campaign, advocate, Friend("bob@example.net", coupon: " ann-own-1 "));
        var finding = Assert.Single(cycled.Findings);
        Assert.Equal(FraudCheck.CouponCycling, finding.Check);
        Assert.Equal("friend used the coupon ANN-OWN-1, which was issued to the advocate", finding.Reason);

        Assert.Empty((await Evaluate(campaign, advocate, Friend("bob@example.net", coupon: "OTHER-1"))).Findings);
    }

    [Fact]
    public async Task Velocity_blocks_once_the_advocate_brought_the_hourly_limit_and_counts_only_the_last_hour()
    {
        var (campaign, advocate) = await Setup(Off with { MaxReferralsPerHour = 3 });
        var now = app.Clock.GetUtcNow();
        await app.WithDb(db =>
        {
            db.Participants.Add(NewParticipant(campaign.Id, "old@example.net", advocate.Id, now.AddMinutes(-61)));
            db.Participants.Add(NewParticipant(campaign.Id, "f1@example.net", advocate.Id, now.AddMinutes(-50)));
            db.Participants.Add(NewParticipant(campaign.Id, "f2@example.net", advocate.Id, now.AddMinutes(-10)));
            return db.SaveChangesAsync();
        });

        // Two in the last hour: a third is fine, even when the engine has already saved that friend.
        Assert.Empty((await Evaluate(campaign, advocate, Friend("f3@example.net"))).Findings);
        await app.WithDb(db =>
        {
            db.Participants.Add(NewParticipant(campaign.Id, "f3@example.net", advocate.Id, now));
            return db.SaveChangesAsync();
        });
        Assert.Empty((await Evaluate(campaign, advocate, Friend("F3@example.net"))).Findings);

        var fourth = await Evaluate(campaign, advocate, Friend("f4@example.net"));
        var finding = Assert.Single(fourth.Findings);
        Assert.Equal(FraudCheck.Velocity, finding.Check);
        Assert.Equal(FraudAction.Block, finding.Action);
        Assert.Equal("the advocate already brought 3 referrals in the last hour (limit 3 an hour)", finding.Reason);

        app.Clock.Advance(TimeSpan.FromMinutes(11));
        Assert.Empty((await Evaluate(campaign, advocate, Friend("f4@example.net"))).Findings);
    }

    [Fact]
    public async Task Every_tripped_check_is_listed()
    {
        var (campaign, advocate) = await Setup(new FraudPolicy
        {
            SelfReferral = FraudAction.Flag,
            SameIp = FraudAction.Flag,
            DisposableEmail = FraudAction.Block,
            BlockedIps = ["198.51.100.20"],
        }, "eve@mailinator.com");
        await RecordIp(advocate.Id, "198.51.100.20");

        var verdict = await Evaluate(campaign, advocate, Friend("eve+2@mailinator.com", "198.51.100.20"));

        Assert.Equal(
            [FraudCheck.BlockedIp, FraudCheck.BlockedIp, FraudCheck.DisposableEmail, FraudCheck.SameIp, FraudCheck.SelfReferral],
            verdict.Findings.Select(f => f.Check).Order());
        Assert.True(verdict.Blocked);
        Assert.False(verdict.Flagged);
    }

    private sealed class NoHttp : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => throw new InvalidOperationException("no HTTP expected");
    }
}
