using MailKit;
using MailKit.Net.Smtp;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Email;

/// <summary>
/// When to try a failed send again: 1 min, 5 min, 30 min, 2 h and 6 h after the failures; after the 6th attempt
/// fails the send is failed. A 5xx answer (mailbox unknown, message refused) fails it at once.
/// </summary>
public static class EmailRetry
{
    public static readonly TimeSpan[] Delays =
    [
        TimeSpan.FromMinutes(1),
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(2),
        TimeSpan.FromHours(6),
    ];

    public static int MaxAttempts => Delays.Length + 1;

    /// <summary>The wait after attempt number <paramref name="attempts"/> failed, or null when none is left.</summary>
    public static TimeSpan? After(int attempts) => attempts >= 1 && attempts <= Delays.Length ? Delays[attempts - 1] : null;
}

/// <summary>
/// Sends due e-mails: leases a batch of pending sends (so instances never send the same one), composes each from the
/// current state of its participant, campaign and reward, sends the batch over one SMTP connection, and records
/// each outcome. The SMTP conversation happens with no database transaction open; a crash between the server's
/// acceptance and the record sends that mail again once its lease runs out (at least once, like the webhooks).
/// </summary>
public sealed class EmailSender(IServiceScopeFactory scopes, EmailSignal signal, TimeProvider clock, IOptions<EmailOptions> options,
    EmailLinks links, PublicUrls urls, ILogger<EmailSender> log) : BackgroundService
{
    public const int BatchSize = 20;
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);
    private readonly EmailOptions _options = options.Value;
    private readonly string _instance = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled || !_options.SendingEnabled)
        {
            return;
        }
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            var more = false;
            try
            {
                more = await SendDueAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogWarning(e, "Sending e-mails failed; trying again shortly");
            }
            catch (Exception)
            {
                break;
            }
            if (!more)
            {
                try
                {
                    await signal.WaitAsync(_options.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>Sends one batch of due sends; true when the batch was full (there may be more).</summary>
    internal async Task<bool> SendDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var claimed = await ClaimAsync(db, ct);
        if (claimed.Count == 0)
        {
            return false;
        }
        var ready = new List<Composed>();
        foreach (var send in claimed)
        {
            (MimeMessage? Message, string? Reason, string? PortalTokenHash) composed;
            try
            {
                composed = await ComposeAsync(db, send, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Alone: the rest of the batch goes on, and this one is tried again later like a failed send.
                await RecordAttemptAsync(db, send, e, clock.GetUtcNow());
                continue;
            }
            if (composed.Message is null)
            {
                await RecordAsync(db, send, EmailStatus.Skipped, composed.Reason, null, null, ct);
            }
            else
            {
                ready.Add(new Composed(send, composed.Message, composed.PortalTokenHash));
            }
        }
        if (ready.Count > 0)
        {
            await SendAsync(db, ready, ct);
        }
        return claimed.Count == BatchSize;
    }

    private async Task<List<EmailSend>> ClaimAsync(ReferloopDb db, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var sends = db.Set<EmailSend>();
        var ids = await sends.AsNoTracking()
            .Where(s => s.Status == EmailStatus.Pending && s.NextAttemptAt <= now && (s.ClaimedUntil == null || s.ClaimedUntil < now))
            .OrderBy(s => s.NextAttemptAt).Select(s => s.Id).Take(BatchSize).ToListAsync(ct);
        if (ids.Count == 0)
        {
            return [];
        }
        var until = now + Lease;
        // The condition again in the UPDATE: of two instances that read the same rows, only one takes each.
        await sends.Where(s => ids.Contains(s.Id) && s.Status == EmailStatus.Pending && (s.ClaimedUntil == null || s.ClaimedUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ClaimedBy, _instance).SetProperty(e => e.ClaimedUntil, until), ct);
        return await sends.AsNoTracking()
            .Where(s => ids.Contains(s.Id) && s.ClaimedBy == _instance && s.ClaimedUntil == until)
            .OrderBy(s => s.NextAttemptAt).ToListAsync(ct);
    }

    /// <summary>A mail ready to go, and the hash of the portal token its link carries, if it has one.</summary>
    private sealed record Composed(EmailSend Send, MimeMessage Message, string? PortalTokenHash)
    {
        /// <summary>Set once the mail's token opens the portal: the token of the mail before it, given back if this one fails.</summary>
        public (bool HandedOut, string? Hash) Previous { get; set; }
    }

    /// <summary>The mail of a send as things stand now, or why it is not sent.</summary>
    private async Task<(MimeMessage? Message, string? Reason, string? PortalTokenHash)> ComposeAsync(ReferloopDb db, EmailSend send, CancellationToken ct)
    {
        var participant = await db.Participants.AsNoTracking().Include(p => p.Campaign)
            .FirstOrDefaultAsync(p => p.Id == send.ParticipantId, ct);
        if (participant?.Campaign is not { } campaign || participant.Email == PersonalData.Erased)
        {
            return (null, "the participant was erased", null);
        }
        if (EmailKind.CanUnsubscribe(send.Kind) && participant.EmailOptedOutAt is not null)
        {
            return (null, "the participant unsubscribed", null);
        }
        if (send.Kind == EmailKind.MagicLink && !participant.IsReferrer)
        {
            return (null, "the participant is not an advocate", null);
        }
        var text = new PageText(PageLanguage.Choose(campaign.Page?.Language, null));
        var values = new Dictionary<string, string>
        {
            ["firstName"] = EmailTemplates.FirstName(participant.Name, text),
            ["name"] = participant.Name ?? "",
            ["campaignName"] = campaign.Name,
            ["shareUrl"] = participant.IsReferrer ? urls.ShareUrl(participant.Code) : "",
        };
        if (send.RewardId is not null)
        {
            var reward = await db.Rewards.AsNoTracking().FirstOrDefaultAsync(r => r.Id == send.RewardId, ct);
            if (reward is null || reward.Status != RewardStatus.Issued)
            {
                return (null, $"the reward is {reward?.Status ?? "gone"}", null);
            }
            values["couponCode"] = reward.CouponCode ?? "";
            values["rewardDescription"] = PortalModel.Describe(reward.Incentive, text);
            values["milestone"] = reward.Milestone is { } milestone ? text.Number(milestone) : "";
        }
        if (EmailKind.CanUnsubscribe(send.Kind))
        {
            values["unsubscribeUrl"] = links.UnsubscribeUrl(participant.Id);
        }
        var template = campaign.Email?.For(send.Kind);
        var usesPortal = new[]
        {
            template?.Subject ?? EmailTemplates.DefaultSubject(send.Kind, text),
            template?.Text ?? EmailTemplates.DefaultText(send.Kind, text),
            template?.Html,
        }.Any(part => EmailSettings.PlaceholdersIn(part).Contains("portalUrl"));
        string? portalTokenHash = null;
        if (usesPortal && participant.IsReferrer)
        {
            // A fresh token for each mail (see HandOutPortalTokenAsync); never the link the join page or the API issued.
            var token = PortalTokens.New();
            portalTokenHash = Secrets.Hash(token);
            values["portalUrl"] = urls.PortalUrl(token);
        }
        var rendered = EmailTemplates.Render(send.Kind, template, text, values);
        var message = new MimeMessage();
        var from = MailboxAddress.Parse(_options.From.Address!.Trim());
        if (!string.IsNullOrWhiteSpace(_options.From.Name))
        {
            from.Name = _options.From.Name.Trim();
        }
        message.From.Add(from);
        message.To.Add(new MailboxAddress(participant.Name ?? "", participant.Email));
        message.Subject = rendered.Subject;
        message.Date = clock.GetUtcNow();
        // The same on every attempt, so a receiving server can recognise a mail it already has.
        message.MessageId = $"{send.Id}@{from.Domain}";
        message.Headers.Add("Auto-Submitted", "auto-generated");
        if (values.TryGetValue("unsubscribeUrl", out var unsubscribe))
        {
            message.Headers.Add("List-Unsubscribe", $"<{unsubscribe}>");
            // RFC 8058: mail clients may unsubscribe with one POST to that URL, without opening it.
            message.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }
        message.Body = new BodyBuilder { TextBody = rendered.Text, HtmlBody = rendered.Html }.ToMessageBody();
        send.Subject = rendered.Subject;
        return (message, null, portalTokenHash);
    }

    /// <summary>
    /// Sends over one connection; a failure to connect or sign in fails the whole batch's attempt. What the server
    /// accepted is recorded also when stopping, so a restart does not send it again; what was not tried stays claimed
    /// until its lease runs out.
    /// </summary>
    private async Task SendAsync(ReferloopDb db, List<Composed> ready, CancellationToken ct)
    {
        var smtp = _options.Smtp;
        using var client = new SmtpClient { Timeout = (int)smtp.Timeout.TotalMilliseconds };
        var outcomes = new List<(Composed Mail, Exception? Error)>();
        try
        {
            await client.ConnectAsync(smtp.Host!.Trim(), smtp.PortOrDefault, SmtpSecurity.Socket(smtp.SecurityOrDefault), ct);
            if (!string.IsNullOrWhiteSpace(smtp.Username))
            {
                await client.AuthenticateAsync(smtp.Username, smtp.Password ?? "", ct);
            }
            foreach (var mail in ready)
            {
                try
                {
                    if (mail.PortalTokenHash is { } hash)
                    {
                        mail.Previous = (true, await HandOutPortalTokenAsync(db, mail.Send.ParticipantId, hash, ct));
                    }
                    await client.SendAsync(mail.Message, ct);
                    outcomes.Add((mail, null));
                }
                catch (SmtpCommandException e)
                {
                    // The server answered this message; the connection is still good for the next one.
                    outcomes.Add((mail, e));
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // The connection is gone: this and the rest wait for the next attempt.
                    foreach (var rest in ready.Skip(outcomes.Count))
                    {
                        outcomes.Add((rest, e));
                    }
                    break;
                }
            }
            if (client.IsConnected)
            {
                await client.DisconnectAsync(true, ct);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            foreach (var rest in ready.Skip(outcomes.Count))
            {
                outcomes.Add((rest, e));
            }
        }
        finally
        {
            var now = clock.GetUtcNow();
            foreach (var (mail, error) in outcomes)
            {
                await RecordAttemptAsync(db, mail.Send, error, now, mail);
            }
        }
    }

    /// <summary>
    /// Each mail with a portal link carries a fresh token (only a hash is kept): it opens the portal from just before
    /// the mail goes, and the previous mail's no longer does. Returns the previous mail's, for a failed send to give back.
    /// </summary>
    private static async Task<string?> HandOutPortalTokenAsync(ReferloopDb db, string participantId, string hash, CancellationToken ct)
    {
        var previous = await db.Participants.Where(p => p.Id == participantId).Select(p => p.MailPortalTokenHash).FirstOrDefaultAsync(ct);
        await db.Participants.Where(p => p.Id == participantId)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.MailPortalTokenHash, hash), ct);
        return previous;
    }

    /// <summary>
    /// Records one attempt: sent, or failed and tried again later (or no more). A failed mail gives the portal link
    /// back to the mail before it, unless a later mail has taken it since.
    /// </summary>
    private async Task RecordAttemptAsync(ReferloopDb db, EmailSend send, Exception? error, DateTimeOffset now, Composed? mail = null)
    {
        if (error is null)
        {
            await RecordAsync(db, send, EmailStatus.Sent, null, now, null, CancellationToken.None);
            return;
        }
        if (mail is { PortalTokenHash: { } hash, Previous: (true, var previous) })
        {
            await db.Participants.Where(p => p.Id == send.ParticipantId && p.MailPortalTokenHash == hash)
                .ExecuteUpdateAsync(s => s.SetProperty(p => p.MailPortalTokenHash, previous), CancellationToken.None);
        }
        var attempts = send.Attempts + 1;
        var permanent = error is SmtpCommandException { StatusCode: var code } && (int)code >= 500;
        var delay = permanent ? null : EmailRetry.After(attempts);
        log.LogWarning("E-mail {SendId} ({Kind}) attempt {Attempt} failed: {Error}", send.Id, send.Kind, attempts, Describe(error));
        await RecordAsync(db, send, delay is null ? EmailStatus.Failed : EmailStatus.Pending, Describe(error), null,
            delay is null ? null : now + delay.Value, CancellationToken.None);
    }

    private static string Describe(Exception error) => error switch
    {
        SmtpCommandException e => $"{(int)e.StatusCode} {e.Message}",
        SmtpProtocolException e => $"protocol: {e.Message}",
        ServiceNotConnectedException or ServiceNotAuthenticatedException => error.Message,
        _ => $"{error.GetType().Name}: {error.GetBaseException().Message}",
    };

    private async Task RecordAsync(ReferloopDb db, EmailSend send, string status, string? error, DateTimeOffset? sentAt,
        DateTimeOffset? nextAttempt, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var attempted = status != EmailStatus.Skipped;
        var subject = send.Subject is { Length: > 300 } whole ? whole[..300] : send.Subject;
        var lastError = error is { Length: > 1000 } ? error[..1000] : error;
        await db.Set<EmailSend>().Where(s => s.Id == send.Id && s.ClaimedBy == _instance).ExecuteUpdateAsync(s => s
            .SetProperty(e => e.Status, status)
            .SetProperty(e => e.Subject, subject)
            .SetProperty(e => e.Attempts, e => attempted ? e.Attempts + 1 : e.Attempts)
            .SetProperty(e => e.LastError, lastError)
            .SetProperty(e => e.SentAt, sentAt)
            .SetProperty(e => e.NextAttemptAt, e => nextAttempt ?? e.NextAttemptAt)
            .SetProperty(e => e.ClaimedBy, (string?)null)
            .SetProperty(e => e.ClaimedUntil, (DateTimeOffset?)null)
            .SetProperty(e => e.UpdatedAt, now), ct);
    }
}
