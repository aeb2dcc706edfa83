using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Tracking;

namespace Referloop.Tests.Fraud;

/// <summary>Remembers the table each command of a watched database context reads, to show what a load queried.</summary>
public sealed partial class CommandRecorder : DbCommandInterceptor
{
    private readonly ConcurrentQueue<string> _tables = new();
    private volatile DbContext? _watched;

    /// <summary>Runs <paramref name="work"/> and returns its result with the tables <paramref name="db"/> read meanwhile, in order.</summary>
    public async Task<(T Result, string[] Tables)> Watch<T>(DbContext db, Func<Task<T>> work)
    {
        _tables.Clear();
        _watched = db;
        try
        {
            var result = await work();
            return (result, _tables.ToArray());
        }
        finally
        {
            _watched = null;
        }
    }

    private void Record(DbCommand command, CommandEventData data)
    {
        // The server's background work shares the pool; only the watched context's commands count.
        if (data.Context is { } context && ReferenceEquals(context, _watched))
        {
            _tables.Enqueue(FromTable().Match(command.CommandText) is { Success: true } match ? match.Groups[1].Value : command.CommandText);
        }
    }

    [GeneratedRegex("""\bFROM\s+"?(\w+)"?""")]
    private static partial Regex FromTable();

    public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result)
    {
        Record(command, eventData);
        return result;
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData,
        InterceptionResult<object> result)
    {
        Record(command, eventData);
        return result;
    }

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData,
        InterceptionResult<int> result)
    {
        Record(command, eventData);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData);
        return ValueTask.FromResult(result);
    }
}

/// <summary>A server whose database contexts report their commands to <see cref="Commands"/>.</summary>
public sealed class FraudFactsApp : ReferloopApp
{
    public CommandRecorder Commands { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.InterceptDatabase(Commands);
    }
}

/// <summary><see cref="FraudFacts.LoadAsync"/> against the real database: what it reads, and that it reads nothing more.</summary>
public class FraudFactsTests(FraudFactsApp app) : IClassFixture<FraudFactsApp>
{
    /// <summary>Every check off, so each test switches on only the ones it is about.</summary>
    private static readonly FraudPolicy Off = new()
    {
        SelfReferral = FraudAction.Allow,
        SameIp = FraudAction.Allow,
        DisposableEmail = FraudAction.Allow,
        CouponCycling = FraudAction.Allow,
    };

    private static readonly FraudPolicy Everything = new()
    {
        SameIp = FraudAction.Flag,
        CouponCycling = FraudAction.Block,
        BlockedEmails = ["*@spam.example"],
        BlockedIps = ["203.0.113.0/24"],
        MaxReferralsPerHour = 10,
    };

    private static FriendSignals Friend(string email = "bob@example.net", string? ip = null, string? clickId = null, string? coupon = null) =>
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

    private static Participant NewParticipant(string campaignId, string email, string? referredBy, DateTimeOffset at,
        DateTimeOffset? referredAt = null) => new()
    {
        Id = Ids.New("par"),
        CampaignId = campaignId,
        Email = Participant.NormaliseEmail(email),
        Code = Guid.NewGuid().ToString("N")[..12],
        IsReferrer = referredBy is null,
        IsInvited = referredBy is not null,
        ReferredById = referredBy,
        ReferredAt = referredBy is null ? null : referredAt ?? at,
        CreatedAt = at,
        UpdatedAt = at,
    };

    private Task Add(params object[] rows) =>
        app.WithDb(db =>
        {
            db.AddRange(rows);
            return db.SaveChangesAsync();
        });

    private Task RecordIp(string participantId, string ip, DateTimeOffset at) =>
        app.WithDb(async db =>
        {
            await FraudSignals.RecordIpAsync(db, participantId, ip, at, CancellationToken.None);
            return 0;
        });

    private Click NewClick(Campaign campaign, Participant advocate, string ip) => new()
    {
        Id = Ids.New("clk"),
        CampaignId = campaign.Id,
        ParticipantId = advocate.Id,
        Ip = ip,
        CreatedAt = app.Clock.GetUtcNow(),
    };

    private static Coupon NewCoupon(CouponPool pool, string code, Participant? issuedTo) => new()
    {
        Id = Ids.New("cpn"),
        PoolId = pool.Id,
        Code = code,
        Source = CouponSource.Upload,
        AllocatedToParticipantId = issuedTo?.Id,
        AllocatedToRewardId = issuedTo is null ? null : Ids.New("rwd"),
    };

    /// <summary>Loads the facts with the commands this load sent, by the table each read.</summary>
    private Task<(FraudFacts Facts, string[] Tables)> Load(FraudPolicy policy, Participant advocate, FriendSignals friend,
        DateTimeOffset? now = null) =>
        app.WithDb(db => app.Commands.Watch(db, () =>
            LoadOne(db, policy, advocate.Id, friend, now ?? app.Clock.GetUtcNow())));

    private static async Task<FraudFacts> LoadOne(ReferloopDb db, FraudPolicy policy, string advocateId, FriendSignals friend, DateTimeOffset now) =>
        (await FraudFacts.LoadAsync(db, [new FraudQuery(policy, advocateId, friend)], now, CancellationToken.None))[0];

    [Fact]
    public async Task Loads_the_click_ip_the_advocates_ips_oldest_first_their_coupon_codes_and_the_last_hours_friends()
    {
        var (campaign, advocate) = await Setup(Everything);
        var (_, other) = await Setup(Everything, "olga@example.com");
        var now = app.Clock.GetUtcNow();
        var click = NewClick(campaign, advocate, "::ffff:203.0.113.9");
        var pool = new CouponPool { Id = Ids.New("cpl"), CampaignId = campaign.Id, Name = "welcome10", Secret = "whsec_x" };
        await Add(click, NewClick(campaign, other, "192.0.2.200"), pool,
            NewCoupon(pool, "ANN-OWN-1", advocate), NewCoupon(pool, "ANN-OWN-2", advocate),
            NewCoupon(pool, "OLGA-1", other), NewCoupon(pool, "FREE-1", null),
            NewParticipant(campaign.Id, "old@example.net", advocate.Id, now.AddMinutes(-61)),
            NewParticipant(campaign.Id, "f1@example.net", advocate.Id, now.AddMinutes(-50)),
            NewParticipant(campaign.Id, "f2@example.net", advocate.Id, now.AddMinutes(-10)),
            NewParticipant(campaign.Id, "f3@example.net", advocate.Id, now),
            NewParticipant(campaign.Id, "olgas-friend@example.net", other.Id, now.AddMinutes(-5)));
        await RecordIp(advocate.Id, "2001:db8::42", now.AddMinutes(-30));
        await RecordIp(advocate.Id, "198.51.100.20", now.AddDays(-3));
        await RecordIp(advocate.Id, "2001:db8::42", now); // seen again: it stays where it was first seen
        await RecordIp(other.Id, "192.0.2.1", now.AddDays(-4));

        // The friend being judged (f3, already saved by the engine) is left out of the count.
        var (facts, tables) = await Load(Everything, advocate, Friend("F3@example.net", "198.51.100.1", click.Id, "ann-own-2"));

        Assert.Equal("::ffff:203.0.113.9", facts.ClickIp);
        Assert.Equal(["198.51.100.20", "2001:db8::42"], facts.AdvocateIps);
        Assert.Equal(["ANN-OWN-1", "ANN-OWN-2"], facts.AdvocateCouponCodes.Order());
        Assert.Equal(2, facts.AdvocateFriendsLastHour);
        Assert.Equal(["clicks", "participant_ips", "coupons", "participants"], tables);
    }

    [Fact]
    public async Task A_participant_added_long_before_counts_among_the_friends_of_the_hour_it_was_referred_in()
    {
        var (campaign, advocate) = await Setup(Everything, "rita@example.com");
        var now = app.Clock.GetUtcNow();
        await Add(
            NewParticipant(campaign.Id, "added-then-referred@example.net", advocate.Id, now.AddDays(-30), referredAt: now.AddMinutes(-5)),
            NewParticipant(campaign.Id, "referred-long-ago@example.net", advocate.Id, now.AddDays(-30)));

        var (facts, _) = await Load(Everything, advocate, Friend("new@example.net"));

        Assert.Equal(1, facts.AdvocateFriendsLastHour);
    }

    [Fact]
    public async Task A_batch_reads_each_table_once_and_gives_each_query_its_own_facts()
    {
        var (campaign, ann) = await Setup(Everything);
        var (_, olga) = await Setup(Everything, "olga@example.com");
        var now = app.Clock.GetUtcNow();
        var annsClick = NewClick(campaign, ann, "203.0.113.9");
        var olgasClick = NewClick(campaign, olga, "192.0.2.200");
        var pool = new CouponPool { Id = Ids.New("cpl"), CampaignId = campaign.Id, Name = "welcome10", Secret = "whsec_x" };
        await Add(annsClick, olgasClick, pool, NewCoupon(pool, "ANN-1", ann), NewCoupon(pool, "OLGA-1", olga),
            NewParticipant(campaign.Id, "a1@example.net", ann.Id, now.AddMinutes(-20)),
            NewParticipant(campaign.Id, "a2@example.net", ann.Id, now.AddMinutes(-10)),
            NewParticipant(campaign.Id, "o1@example.net", olga.Id, now.AddMinutes(-5)));
        await RecordIp(ann.Id, "198.51.100.20", now);
        await RecordIp(olga.Id, "192.0.2.1", now);
        FraudQuery[] queries =
        [
            new(Everything, ann.Id, Friend("A2@example.net", clickId: annsClick.Id, coupon: "x")), // a2 is judged: left out
            new(Everything, ann.Id, Friend("new@example.net")),
            new(Everything, olga.Id, Friend("o1@example.net", clickId: olgasClick.Id, coupon: "y")),
        ];

        var (facts, tables) = await app.WithDb(db => app.Commands.Watch(db, () =>
            FraudFacts.LoadAsync(db, queries, now, CancellationToken.None)));

        Assert.Equal(["clicks", "participant_ips", "coupons", "participants"], tables);
        Assert.Equal(["203.0.113.9", null, "192.0.2.200"], facts.Select(f => f.ClickIp));
        Assert.Equal([["198.51.100.20"], ["198.51.100.20"], ["192.0.2.1"]], facts.Select(f => f.AdvocateIps.ToArray()));
        Assert.Equal([["ANN-1"], [], ["OLGA-1"]], facts.Select(f => f.AdvocateCouponCodes.ToArray()));
        Assert.Equal([1, 2, 0], facts.Select(f => f.AdvocateFriendsLastHour));
    }

    [Fact]
    public async Task Reads_nothing_when_every_check_is_off_or_needs_nothing_stored()
    {
        var (campaign, advocate) = await Setup(Off);
        var click = NewClick(campaign, advocate, "198.51.100.20");
        await Add(click);
        await RecordIp(advocate.Id, "198.51.100.20", app.Clock.GetUtcNow());
        var policy = Off with
        {
            SelfReferral = FraudAction.Block,
            DisposableEmail = FraudAction.Block,
            BlockedEmails = ["*@spam.example"],
            BrowserConversions = BrowserConversions.Review,
        };

        var (facts, tables) = await Load(policy, advocate, Friend("bob@example.net", "198.51.100.20", click.Id, "ANN-OWN-1"));

        Assert.Empty(tables);
        Assert.Equal(FraudFacts.None, facts);
    }

    public static TheoryData<string, FraudPolicy, FriendSignals, string[]> OneCheck => new()
    {
        { "sameIp with a click", Off with { SameIp = FraudAction.Flag }, Friend(clickId: "clk_x"), ["clicks", "participant_ips"] },
        { "sameIp without a click", Off with { SameIp = FraudAction.Flag }, Friend(), ["participant_ips"] },
        { "blockedIps with a click", Off with { BlockedIps = ["203.0.113.0/24"] }, Friend(clickId: "clk_x"), ["clicks", "participant_ips"] },
        { "blockedIps with a click id too long to be one", Off with { BlockedIps = ["203.0.113.0/24"] }, Friend(clickId: new string('x', 41)), ["participant_ips"] },
        { "couponCycling with a coupon", Off with { CouponCycling = FraudAction.Flag }, Friend(coupon: "ANN-1"), ["coupons"] },
        { "couponCycling without a coupon", Off with { CouponCycling = FraudAction.Flag }, Friend(coupon: " "), [] },
        { "maxReferralsPerHour", Off with { MaxReferralsPerHour = 5 }, Friend(clickId: "clk_x", coupon: "ANN-1"), ["participants"] },
    };

    [Theory]
    [MemberData(nameof(OneCheck))]
    public async Task Each_check_reads_only_its_own_table(string check, FraudPolicy policy, FriendSignals friend, string[] expected)
    {
        var (_, advocate) = await Setup(policy);

        var (_, tables) = await Load(policy, advocate, friend);

        Assert.True(expected.SequenceEqual(tables), $"{check}: read [{string.Join(", ", tables)}], expected [{string.Join(", ", expected)}]");
    }

    [Fact]
    public async Task The_last_hour_leaves_out_friends_brought_exactly_an_hour_ago_and_the_friend_judged()
    {
        var (campaign, advocate) = await Setup(Off with { MaxReferralsPerHour = 3 });
        var now = app.Clock.GetUtcNow();
        await Add(
            NewParticipant(campaign.Id, "hour@example.net", advocate.Id, now.AddHours(-1)),
            NewParticipant(campaign.Id, "inside@example.net", advocate.Id, now.AddHours(-1).AddSeconds(1)),
            NewParticipant(campaign.Id, "recent@example.net", advocate.Id, now.AddSeconds(-30)));
        var policy = Off with { MaxReferralsPerHour = 3 };

        Assert.Equal(2, (await Load(policy, advocate, Friend("new@example.net"), now)).Facts.AdvocateFriendsLastHour);
        Assert.Equal(1, (await Load(policy, advocate, Friend("Inside@Example.net"), now)).Facts.AdvocateFriendsLastHour);
        Assert.Equal(1, (await Load(policy, advocate, Friend("new@example.net"), now.AddMinutes(59))).Facts.AdvocateFriendsLastHour);
        Assert.Equal(3, (await Load(policy, advocate, Friend("new@example.net"), now.AddSeconds(-1))).Facts.AdvocateFriendsLastHour);
    }

    [Fact]
    public async Task The_campaigns_screening_loads_the_facts_then_runs_every_check()
    {
        var (campaign, advocate) = await Setup(new FraudPolicy
        {
            SelfReferral = FraudAction.Flag,
            SameIp = FraudAction.Flag,
            DisposableEmail = FraudAction.Block,
            BlockedIps = ["198.51.100.20"],
            MaxReferralsPerHour = 1,
        }, "eve@mailinator.com");
        var click = NewClick(campaign, advocate, "198.51.100.21");
        await Add(click, NewParticipant(campaign.Id, "f1@example.net", advocate.Id, app.Clock.GetUtcNow().AddMinutes(-5)));
        await RecordIp(advocate.Id, "198.51.100.21", app.Clock.GetUtcNow().AddDays(-1));
        await RecordIp(advocate.Id, "198.51.100.20", app.Clock.GetUtcNow());

        var friend = Friend("eve+2@mailinator.com", "192.0.2.1", click.Id);
        var facts = await app.WithDb(db => LoadOne(db, campaign.Fraud, advocate.Id, friend, app.Clock.GetUtcNow()));
        var verdict = new FraudPolicyScreening().Evaluate(campaign, advocate, friend, facts);

        Assert.Equal(
            [
                "friend's email normalises to the advocate's: eve@mailinator.com",
                "friend's email domain mailinator.com is a disposable-email provider",
                "advocate used the IP 198.51.100.20, which matches the blocked entry '198.51.100.20'",
                $"friend's click {click.Id} came from 198.51.100.21, an IP the advocate used",
                "the advocate already brought 1 referrals in the last hour (limit 1 an hour)",
            ],
            verdict.Findings.Select(f => f.Reason));
        Assert.True(verdict.Blocked);
    }

    [Fact]
    public async Task Recording_ignores_text_that_is_not_an_ip_and_stores_the_canonical_form_once()
    {
        var (_, advocate) = await Setup(Off);
        var now = app.Clock.GetUtcNow();
        await RecordIp(advocate.Id, "not an ip", now);
        await RecordIp(advocate.Id, "::ffff:192.0.2.1", now);
        await RecordIp(advocate.Id, "192.0.2.1", now.AddMinutes(5));

        var ips = await app.WithDb(db => db.ParticipantIps.AsNoTracking().Where(p => p.ParticipantId == advocate.Id).ToListAsync());
        var ip = Assert.Single(ips);
        Assert.Equal("192.0.2.1", ip.Ip);
        Assert.Equal(TimeSpan.FromMinutes(5), ip.LastSeenAt - ip.FirstSeenAt);
    }
}
