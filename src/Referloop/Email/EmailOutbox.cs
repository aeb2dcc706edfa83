using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Options;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Email;

/// <summary>
/// E-mail as a subscriber of the outbox: <c>participant.joined</c> of an advocate becomes a welcome mail,
/// <c>reward.issued</c> of an issued reward a reward or milestone mail. The sends are written by the delivery engine's
/// fan-out, in the transaction that marks their messages dispatched, so a message is mailed once or (after a crash
/// before that commit) not yet. With e-mail off, every check here is one flag.
/// </summary>
public sealed class EmailOutbox(IOptions<EmailOptions> options, EmailSignal signal)
{
    public bool Enabled { get; } = options.Value.Enabled;

    /// <summary>Whether a message may become a mail; the recipient's details are checked at the fan-out.</summary>
    public bool Wants(OutboxMessage message) =>
        Enabled && message.Type is EventTypes.ParticipantJoined or EventTypes.RewardIssued;

    /// <summary>
    /// Writes the sends the messages call for, on the caller's connection and in its transaction; the number written.
    /// Opted-out and erased participants get none; a friend who joined gets no welcome.
    /// </summary>
    public async Task<int> FanOutAsync(ReferloopDb db, IReadOnlyList<OutboxMessage> messages, DateTimeOffset now, CancellationToken ct)
    {
        if (!Enabled)
        {
            return 0;
        }
        var wanted = new List<(OutboxMessage Message, string Kind, string ParticipantId, string? RewardId)>();
        foreach (var message in messages.Where(Wants))
        {
            if (Read(message) is { } mail)
            {
                wanted.Add((message, mail.Kind, mail.ParticipantId, mail.RewardId));
            }
        }
        if (wanted.Count == 0)
        {
            return 0;
        }
        var participantIds = wanted.Select(w => w.ParticipantId).Distinct().ToList();
        var recipients = await db.Participants.AsNoTracking()
            .Where(p => participantIds.Contains(p.Id) && p.EmailOptedOutAt == null)
            .Select(p => new { p.Id, p.Email, p.CampaignId })
            .ToDictionaryAsync(p => p.Id, ct);
        var rewardIds = wanted.Where(w => w.RewardId is not null).Select(w => w.RewardId!).Distinct().ToList();
        var rewardKinds = rewardIds.Count == 0 ? [] : await db.Rewards.AsNoTracking()
            .Where(r => rewardIds.Contains(r.Id))
            .Select(r => new { r.Id, r.Kind })
            .ToDictionaryAsync(r => r.Id, r => r.Kind, ct);
        var sends = new List<EmailSend>();
        foreach (var (message, kind, participantId, rewardId) in wanted)
        {
            if (!recipients.TryGetValue(participantId, out var recipient) || recipient.Email == PersonalData.Erased)
            {
                continue;
            }
            var mailKind = kind;
            if (rewardId is not null && rewardKinds.TryGetValue(rewardId, out var rewardKind)
                && rewardKind is RewardKind.Milestone or RewardKind.Goal)
            {
                mailKind = EmailKind.Milestone;
            }
            sends.Add(New(recipient.CampaignId, participantId, mailKind, recipient.Email, now, message.Id, rewardId));
        }
        await InsertAsync(db, sends, ct);
        return sends.Count;
    }

    /// <summary>Wakes the sender once the transaction that wrote sends has committed.</summary>
    public void Written(int count)
    {
        if (count > 0)
        {
            signal.Poke();
        }
    }

    /// <summary>One address gets at most one magic link per interval.</summary>
    public static readonly TimeSpan MagicLinkInterval = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Mails the link to their portal to the campaign's advocate with the address as typed (the magic link page, and
    /// the join page for an address that has already joined), unless e-mail is off or one went out in the last
    /// <see cref="MagicLinkInterval"/>. False when the address is no advocate's.
    /// </summary>
    public async Task<bool> SendMagicLinkAsync(ReferloopDb db, string campaignId, string typedAddress, DateTimeOffset now,
        CancellationToken ct)
    {
        var address = Participant.NormaliseEmail(typedAddress);
        var advocate = await db.Participants.AsNoTracking()
            .Where(p => p.CampaignId == campaignId && p.Email == address && p.IsReferrer)
            .Select(p => p.Id)
            .FirstOrDefaultAsync(ct);
        if (advocate is null)
        {
            return false;
        }
        if (Enabled)
        {
            await MailMagicLinkAsync(db, campaignId, advocate, address, now, ct);
        }
        return true;
    }

    private async Task MailMagicLinkAsync(ReferloopDb db, string campaignId, string participantId, string address,
        DateTimeOffset now, CancellationToken ct)
    {
        var since = now - MagicLinkInterval;
        // The check and the insert are one transaction: two requests at once would both find no recent link and
        // both send one, and only the later would open the portal (each such mail replaces the participant's mail
        // portal token). On PostgreSQL the participant's row is locked first, so the second request waits and then
        // finds the first's send; on SQLite the transaction holds the one writer from before the check
        // (SqliteWriteQueue).
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (!db.OnSqlite)
        {
            await db.Database.ExecuteSqlAsync($"""SELECT 1 FROM participants WHERE "Id" = {participantId} FOR UPDATE""", ct);
        }
        var recent = await db.Set<EmailSend>().AnyAsync(s => s.ParticipantId == participantId && s.Kind == EmailKind.MagicLink
            && s.CreatedAt > since, ct);
        if (recent)
        {
            return;
        }
        db.Add(New(campaignId, participantId, EmailKind.MagicLink, address, now));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        signal.Poke();
    }

    public static EmailSend New(string campaignId, string participantId, string kind, string to, DateTimeOffset now,
        string? messageId = null, string? rewardId = null) => new()
        {
            Id = Ids.New("eml"),
            CampaignId = campaignId,
            ParticipantId = participantId,
            Kind = kind,
            MessageId = messageId,
            RewardId = rewardId,
            To = to,
            Status = EmailStatus.Pending,
            NextAttemptAt = now,
            CreatedAt = now,
            UpdatedAt = now,
        };

    /// <summary>Who a message mails, and what; null when it mails nobody.</summary>
    internal static (string Kind, string ParticipantId, string? RewardId)? Read(OutboxMessage message)
    {
        try
        {
            using var document = JsonDocument.Parse(message.Data);
            var data = document.RootElement;
            if (message.Type == EventTypes.ParticipantJoined)
            {
                return data.TryGetProperty("participant", out var participant)
                    && Text(participant, "role") == ParticipantRole.Referrer && Text(participant, "id") is { } id
                    ? (EmailKind.Welcome, id, null)
                    : null;
            }
            return data.TryGetProperty("reward", out var reward)
                && Text(reward, "status") == RewardStatus.Issued
                && Text(reward, "participantId") is { } recipient && Text(reward, "id") is { } rewardId
                ? (EmailKind.Reward, recipient, rewardId)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static Task InsertAsync(ReferloopDb db, List<EmailSend> sends, CancellationToken ct) =>
        sends.Count == 0 ? Task.CompletedTask : new BulkRows(db, sends.Count)
            .Text("Id", i => sends[i].Id)
            .Text("CampaignId", i => sends[i].CampaignId)
            .Text("ParticipantId", i => sends[i].ParticipantId)
            .Text("Kind", i => sends[i].Kind)
            .Text("MessageId", i => sends[i].MessageId)
            .Text("RewardId", i => sends[i].RewardId)
            .Text("To", i => sends[i].To)
            .Text("Status", i => sends[i].Status)
            .Int("Attempts", _ => 0)
            .Instant("NextAttemptAt", i => sends[i].NextAttemptAt)
            .Instant("CreatedAt", i => sends[i].CreatedAt)
            .Instant("UpdatedAt", i => sends[i].UpdatedAt)
            .InsertAsync("email_sends", ct);
}

/// <summary>Wakes the e-mail sender: many pokes before it wakes collapse into one.</summary>
public sealed class EmailSignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Poke()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (SemaphoreFullException)
        {
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);
}
