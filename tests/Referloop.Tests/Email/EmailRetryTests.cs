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
