using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// One outbound event, written in the same transaction as the change that causes it (transactional outbox):
/// a crash can neither lose a message nor invent one. The delivery engine fans it out to the endpoints subscribed when
/// it takes the message: one delivery each, created leased to the instance that will send them.
/// </summary>
public sealed class OutboxMessage
{
    /// <summary>Becomes the <c>webhook-id</c>, the same on every retry (<c>msg_…</c>).</summary>
    public required string Id { get; init; }

    /// <summary>e.g. <c>referral.approved</c>; see <see cref="EventTypes"/>.</summary>
    public required string Type { get; init; }

    public string? CampaignId { get; init; }

    /// <summary>
    /// The endpoint an operational event (<see cref="EventTypes.Operational"/>) is about; the message is never
    /// delivered to it.
    /// </summary>
    public string? EndpointId { get; init; }

    private string? _data;
    private readonly Func<string>? _serialize;

    public OutboxMessage()
    {
    }

    /// <summary>A new message whose data is serialized when first read (<see cref="Outbox.Create{T}"/>).</summary>
    internal OutboxMessage(Func<string> serialize) => _serialize = serialize;

    /// <summary>
    /// The envelope's <c>data</c> object, as JSON. A message made by <see cref="Outbox.Create{T}"/> is serialized when
    /// this is first read, by the writer that stores it: a message nobody takes is never serialized.
    /// </summary>
    public string Data
    {
        get => _data ??= _serialize?.Invoke() ?? throw new InvalidOperationException($"message {Id} has no data");
        init => _data = value;
    }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>
    /// Set in the same transaction that creates this message's deliveries (one per subscribed endpoint), when the
    /// delivery engine takes it, so a crash either leaves both undone or both done.
    /// </summary>
    public DateTimeOffset? DispatchedAt { get; set; }

    /// <summary>
    /// When personal data was last removed from <see cref="Data"/>: emptied (to <c>{}</c>) because every delivery had
    /// ended longer ago than <c>Webhooks:DeliveredBodyRetentionDays</c>, or an erased participant's e-mail and name
    /// replaced by <c>[erased]</c>. Such a message is no longer replayed or recovered: it would not carry what was sent.
    /// </summary>
    public DateTimeOffset? DataPurgedAt { get; set; }
}

public static class EventTypes
{
    public const string ParticipantJoined = "participant.joined";
    public const string ReferralCreated = "referral.created";
    public const string ReferralQualified = "referral.qualified";
    public const string ReferralApproved = "referral.approved";
    public const string ReferralVoided = "referral.voided";
    public const string RewardIssued = "reward.issued";
    public const string RewardBlocked = "reward.blocked";

    /// <summary>A refund took a reward back: <c>revoked</c> when unpaid, <c>clawback_required</c> when paid.</summary>
    public const string RewardRevoked = "reward.revoked";
    public const string Conversion = "conversion";

    /// <summary>A referral tripped a fraud check set to <c>flag</c> and entered the review queue.</summary>
    public const string ReferralFlagged = "referral.flagged";

    /// <summary>A participant's fraud-risk level changed (low, medium, high).</summary>
    public const string ParticipantRiskChanged = "participant.risk_changed";

    /// <summary>Sent to the other endpoints when one is disabled: 410 Gone, 5 days of failures, or by hand.</summary>
    public const string EndpointDisabled = "endpoint.disabled";

    /// <summary>Sent to the other endpoints when a message's last scheduled attempt to one endpoint failed.</summary>
    public const string MessageAttemptExhausted = "message.attempt.exhausted";

    /// <summary>
    /// Events about the webhooks themselves. A failure to deliver one never raises another (see
    /// <see cref="DeliverySender"/>), so they cannot feed each other in a loop.
    /// </summary>
    public static readonly string[] Operational =
    [
        EndpointDisabled,
        MessageAttemptExhausted,
    ];

    public static readonly string[] All =
    [
        ParticipantJoined, ReferralCreated, ReferralQualified, ReferralApproved, ReferralVoided,
        RewardIssued, RewardBlocked, RewardRevoked, Conversion,
        ReferralFlagged, ParticipantRiskChanged,
        EndpointDisabled, MessageAttemptExhausted,
    ];

    public static bool IsOperational(string type) => Operational.Contains(type, StringComparer.Ordinal);
}

/// <summary>
/// Writing outbox messages. A message is made pure (<see cref="Create{T}"/>) and written by the writer of the change it
/// reports, in the same transaction, as an explicit step: a tracked row of the caller's save (<see cref="Add{T}"/>)
/// or, on the batched paths, one statement for all of them (<see cref="OutboxWriter"/>) after the other rows. It is
/// written once, undispatched; the delivery engine fans it out to the endpoints subscribed when it takes it. Whoever
/// writes one pokes <see cref="OutboxSignal"/> after the commit, so the first attempt need not wait for a poll. (The
/// event path fans its messages out in its own transaction instead, while the engine has room.)
/// </summary>
public static class Outbox
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Adds a message to the context; it is written by the caller's next <c>SaveChanges</c>, together with
    /// the change it reports.
    /// </summary>
    public static OutboxMessage Add<T>(ReferloopDb db, string type, string? campaignId, T data, DateTimeOffset now) =>
        Add(db, Create(type, campaignId, data, now));

    /// <summary>Adds a message made with <see cref="Create"/> to the context, for the caller's next <c>SaveChanges</c>.</summary>
    public static OutboxMessage Add(ReferloopDb db, OutboxMessage message)
    {
        db.Outbox.Add(message);
        return message;
    }

    /// <summary>
    /// A new message, not yet written anywhere. <paramref name="data"/> is serialized when the message's data is first
    /// read, so it must not change in between: the records the engine builds its messages from are snapshots.
    /// </summary>
    public static OutboxMessage Create<T>(string type, string? campaignId, T data, DateTimeOffset now) =>
        new(() => JsonSerializer.Serialize(data, Json))
        {
            Id = Ids.New("msg"),
            Type = type,
            CampaignId = campaignId,
            CreatedAt = now,
        };

    /// <summary>A new operational event about <paramref name="endpoint"/>, which will not be sent to it; not yet written.</summary>
    public static OutboxMessage CreateAbout<T>(string type, WebhookEndpoint endpoint, string? campaignId, T data, DateTimeOffset now) => new()
    {
        Id = Ids.New("msg"),
        Type = type,
        CampaignId = campaignId,
        EndpointId = endpoint.Id,
        Data = JsonSerializer.Serialize(data, Json),
        CreatedAt = now,
    };
}

/// <summary>
/// The batched writers' outbox step (the event writer, the delivery recorder): the messages of a transaction in one
/// statement, on the caller's connection and in its transaction, after the rows they report on. A message some enabled
/// endpoint or e-mail takes is written undispatched, for the delivery engine's fan-out, or, when the caller passes the
/// engine and it has room, fanned out in the same transaction. A message nobody takes goes nowhere, so it is not
/// written at all: for a shop without endpoints that is most of an event's rows and bytes.
/// <see cref="WebhookOptions.KeepUntakenMessages"/> keeps them, written dispatched, as a log of what was raised.
/// </summary>
public sealed class OutboxWriter(Email.EmailOutbox email, IOptions<WebhookOptions> options)
{
    private readonly bool _keepUntaken = options.Value.KeepUntakenMessages;

    /// <summary>
    /// Marks the messages nobody takes dispatched at <paramref name="now"/> and writes the others (all of them when
    /// untaken ones are kept). With <paramref name="fanOutHere"/> delivering and room in it, the taken messages are
    /// written dispatched with their deliveries and mails: the caller hands the result to
    /// <see cref="DeliveryEngine.HandOver"/> after its commit, and their first attempts need no fan-out transaction.
    /// </summary>
    internal async Task<FannedOut?> InsertAsync(ReferloopDb db, IReadOnlyList<OutboxMessage> messages, DateTimeOffset now,
        CancellationToken ct, DeliveryEngine? fanOutHere = null)
    {
        var rows = new StatementBatch(db);
        var step = await AddAsync(db, rows, messages, now, ct, fanOutHere);
        await rows.RunAsync(ct);
        return await FinishAsync(db, step, now, ct);
    }

    /// <summary>
    /// <see cref="InsertAsync"/> as part of a caller's <see cref="StatementBatch"/>: adds the messages' rows and their
    /// deliveries to <paramref name="rows"/>. Once the rows are written, <see cref="FinishAsync"/> writes the mails
    /// (which read the participants and rewards the messages are about) and gives what to hand over.
    /// </summary>
    internal async Task<OutboxStep?> AddAsync(ReferloopDb db, StatementBatch rows, IReadOnlyList<OutboxMessage> messages,
        DateTimeOffset now, CancellationToken ct, DeliveryEngine? fanOutHere = null)
    {
        if (messages.Count == 0)
        {
            return null;
        }
        var endpoints = await EnabledEndpoints.ReadAsync(db, ct);
        var written = new List<OutboxMessage>(messages.Count);
        var taken = new List<OutboxMessage>(messages.Count);
        foreach (var message in messages)
        {
            if (endpoints.Any(e => e.Wants(message)) || email.Wants(message))
            {
                written.Add(message);
                if (message.DispatchedAt is null)
                {
                    taken.Add(message);
                }
            }
            else
            {
                message.DispatchedAt ??= now;
                if (_keepUntaken)
                {
                    written.Add(message);
                }
            }
        }
        if (written.Count == 0)
        {
            return null;
        }
        var room = taken.Count == 0 ? 0 : fanOutHere?.Room() ?? 0;
        if (room > 0)
        {
            taken.ForEach(m => m.DispatchedAt = now);
        }
        rows.Insert(new BulkRows(db, written.Count)
            .Text("Id", i => written[i].Id)
            .Text("Type", i => written[i].Type)
            .Text("CampaignId", i => written[i].CampaignId)
            .Text("EndpointId", i => written[i].EndpointId)
            .Text("Data", i => written[i].Data)
            .Instant("CreatedAt", i => written[i].CreatedAt)
            .Instant("DispatchedAt", i => written[i].DispatchedAt), "outbox");
        return room > 0 ? new OutboxStep(fanOutHere!, taken, fanOutHere!.AddFanOut(db, rows, taken, endpoints, now, room)) : null;
    }

    /// <summary>After the rows of <see cref="AddAsync"/> are written: the mails of the messages fanned out, and what to hand over.</summary>
    internal static async Task<FannedOut?> FinishAsync(ReferloopDb db, OutboxStep? step, DateTimeOffset now, CancellationToken ct) =>
        step is null ? null : await step.Engine.WriteMailsAsync(db, step.Taken, step.Claimed, now, ct);
}

/// <summary>Messages fanned out here by <see cref="OutboxWriter.AddAsync"/>, with the deliveries leased to this instance.</summary>
internal sealed record OutboxStep(DeliveryEngine Engine, List<OutboxMessage> Taken, List<ClaimedDelivery> Claimed);

internal sealed class OutboxMessageConfiguration : IEntityTypeConfiguration<OutboxMessage>
{
    public void Configure(EntityTypeBuilder<OutboxMessage> message)
    {
        message.ToTable("outbox");
        message.HasKey(m => m.Id);
        message.Property(m => m.Id).HasMaxLength(40);
        message.Property(m => m.Type).HasMaxLength(64);
        message.Property(m => m.CampaignId).HasMaxLength(40);
        // Through the property, which serializes a new message's data when first read; its field may still be empty.
        message.Property(m => m.Data).UsePropertyAccessMode(PropertyAccessMode.Property);
        // No foreign key: the event outlives the endpoint it is about.
        message.Property(m => m.EndpointId).HasMaxLength(40);
        message.HasIndex(m => new { m.CampaignId, m.Type });
        // The dispatcher only ever looks for undispatched messages; a filtered index keeps that flat as the log grows.
        message.HasIndex(m => m.Id).HasDatabaseName("IX_outbox_undispatched").HasFilter("\"DispatchedAt\" IS NULL");
        // The retention sweep looks for old bodies still kept: an emptied one leaves this index, so the sweep reads
        // what it may purge, not the whole log (on SQLite it holds the one writer while it reads). The filter must be
        // the sweep's own condition, word for word, for SQLite to use it.
        message.HasIndex(m => m.CreatedAt).HasDatabaseName("IX_outbox_unpurged").HasFilter("\"Data\" <> '{}'");
    }
}
