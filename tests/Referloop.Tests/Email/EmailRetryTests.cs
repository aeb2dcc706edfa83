using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Email;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Email;

/// <summary>A mail server that keeps answering 451: the send is retried on the schedule, then recorded as failed.</summary>
public sealed class EmailRetryTests(FailingEmailApp app) : IClassFixture<FailingEmailApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<EmailSend> Send(string campaign) =>
        await app.WithDb(db => db.Set<EmailSend>().AsNoTracking().SingleOrDefaultAsync(s => s.CampaignId == campaign))
        ?? throw new Xunit.Sdk.XunitException("no send recorded yet");

    [Fact]
    public async Task A_refusing_smtp_server_is_retried_with_backoff_until_the_send_is_recorded_as_failed()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Busy server" });
        await _admin.Advocate(campaign, "patient@example.com", "Pat");

        for (var attempt = 1; attempt <= EmailRetry.MaxAttempts; attempt++)
        {
            await Eventually(async () => await app.WithDb(db => db.Set<EmailSend>()
                .AnyAsync(s => s.CampaignId == campaign && s.ClaimedBy == null && s.Attempts == attempt)), $"attempt {attempt} recorded");
            var send = await Send(campaign);
            Assert.StartsWith("451 ", send.LastError);
            Assert.Contains("try again later", send.LastError);
            Assert.Equal(attempt, app.Failing.Refused);
            if (attempt == EmailRetry.MaxAttempts)
            {
                break;
            }
            Assert.Equal(EmailStatus.Pending, send.Status);
            var delay = EmailRetry.Delays[attempt - 1];
            Assert.Equal(app.Clock.GetUtcNow() + delay, send.NextAttemptAt);
            // Not due yet: a wake-up before the time sends nothing.
            app.Clock.Advance(delay - TimeSpan.FromSeconds(1));
            app.Services.GetRequiredService<EmailSignal>().Poke();
            app.Clock.Advance(TimeSpan.FromSeconds(1));
            app.Services.GetRequiredService<EmailSignal>().Poke();
        }

        var failed = await Send(campaign);
        Assert.Equal(EmailStatus.Failed, failed.Status);
        Assert.Equal(EmailRetry.MaxAttempts, failed.Attempts);
        Assert.Null(failed.SentAt);
        Assert.Equal("Welcome to Busy server, Pat", failed.Subject);
        Assert.Empty(app.Inbox.All());
    }
}

/// <summary>A mail with a portal link that the server refuses: the link of the mail sent before it keeps working.</summary>
public sealed class EmailPortalLinkTests(FailingEmailApp app) : IClassFixture<FailingEmailApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Task<bool> Attempted(string campaign, int attempts) => app.WithDb(db => db.Set<EmailSend>()
        .AnyAsync(s => s.CampaignId == campaign && s.ClaimedBy == null && s.Attempts == attempts));

    [Fact]
    public async Task A_refused_mail_leaves_the_portal_link_of_the_mail_sent_before_it_working()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Kept link" });
        var (advocate, _) = await _admin.Advocate(campaign, "kept@example.com", "Kim");
        await Eventually(() => Attempted(campaign, 1), "the welcome's first attempt recorded");
        // The link of a mail sent before this one.
        var earlier = Referloop.Security.Secrets.Hash("pt_sent_before");
        await app.WithDb(db => db.Participants.Where(p => p.Id == advocate)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.MailPortalTokenHash, earlier)));

        app.Clock.Advance(EmailRetry.Delays[0]);
        app.Services.GetRequiredService<EmailSignal>().Poke();
        await Eventually(() => Attempted(campaign, 2), "the welcome's second attempt recorded");

        Assert.Equal(earlier, await app.WithDb(db => db.Participants.Where(p => p.Id == advocate).Select(p => p.MailPortalTokenHash).SingleAsync()));
    }
}
