using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Tracking;

public static class EventKinds
{
    public const string Signup = "signup";
    public const string Purchase = "purchase";

    /// <summary>The purchase with the event's order id is refunded: it stops counting.</summary>
    public const string Refund = "refund";

    /// <summary>As <see cref="Refund"/>, when the payment was reversed by the card issuer.</summary>
    public const string Chargeback = "chargeback";

    public static bool IsRefund(string? type) =>
        string.Equals(type, Refund, StringComparison.OrdinalIgnoreCase) || string.Equals(type, Chargeback, StringComparison.OrdinalIgnoreCase);
}

/// <summary>Who reported an event: anyone holding the publishable key, or the merchant's own systems.</summary>
public static class EventSource
{
    /// <summary>A browser with the campaign's publishable key: the campaign's <c>fraud.browserConversions</c> applies.</summary>
    public const string Browser = "browser";

    /// <summary>The admin key or an inbound hook token: trusted.</summary>
    public const string Server = "server";
}

/// <summary>A row an order id or idempotency key makes unique in its campaign: an event, processed or waiting.</summary>
public interface IOrderKeyed
{
    string CampaignId { get; }
    string? OrderId { get; }
    string? IdempotencyKey { get; }
}

public static class OrderKeyed
{
    /// <summary>
    /// What makes an event unique in its campaign, as text (<c>order:…</c>, <c>key:…</c>): two events that share one
    /// are the same event, and the write loops keep them in separate batches.
    /// </summary>
    public static IEnumerable<string> Keys(string campaignId, string? orderId, string? idempotencyKey)
    {
        if (orderId is not null)
        {
            yield return $"order:{campaignId}:{orderId}";
        }
        if (idempotencyKey is not null)
        {
            yield return $"key:{campaignId}:{idempotencyKey}";
        }
    }

    /// <summary>
    /// The rows of the campaigns that hold one of the order ids or keys. One indexed search per list, joined with
    /// <c>UNION ALL</c>: an <c>OR</c> across the two columns would scan the campaigns' rows. The partial indexes hold
    /// only rows with a value, and an <c>IN</c> list already says so; an explicit <c>IS NOT NULL</c> would let SQLite
    /// read the whole range of the campaign's values instead of one search per value in the list.
    /// </summary>
    public static IQueryable<T> HoldingAny<T>(this IQueryable<T> rows, List<string> campaignIds, List<string> orderIds,
        List<string> keys) where T : class, IOrderKeyed
    {
        // One parameter per value: EF Core then knows that none is null. With one array parameter, PostgreSQL's
        // generic plan also had to match rows without an order id, and read every event of the campaign.
        var byOrder = rows.Where(e => campaignIds.Contains(e.CampaignId) && EF.MultipleParameters(orderIds).Contains(e.OrderId!));
        var byKey = rows.Where(e => campaignIds.Contains(e.CampaignId) && EF.MultipleParameters(keys).Contains(e.IdempotencyKey!));
        return keys.Count == 0 ? byOrder : orderIds.Count == 0 ? byKey : byOrder.Concat(byKey);
    }

    /// <summary>
    /// The condition of a row's insert (<see cref="Storage.BulkRows"/>) that no row of <paramref name="table"/> in its
    /// campaign holds its order id or key: an insert that is its own look-up for what it repeats. One indexed search
    /// per column, as in <see cref="HoldingAny{T}"/>.
    /// </summary>
    public static Func<Func<string, string>, string> NoneIn(string table) => column => $"""
        NOT EXISTS (SELECT 1 FROM {table} WHERE "CampaignId" = {column("CampaignId")} AND "OrderId" = {column("OrderId")})
        AND NOT EXISTS (SELECT 1 FROM {table} WHERE "CampaignId" = {column("CampaignId")} AND "IdempotencyKey" = {column("IdempotencyKey")})
        """;

    /// <summary>
    /// Whether a write loop's batch reads what its requests repeat before writing: repeats (an order id or key sent
    /// again) are rare, and a batch that does not read finds them by its insert, then runs again, reading. After a
    /// batch that met a repeat, the next <see cref="BatchesAfterRepeat"/> read first: a client resending a run of
    /// orders costs one batch run twice, not every batch. Used by one loop.
    /// </summary>
    public sealed class RepeatWatch
    {
        public const int BatchesAfterRepeat = 8;

        private int _left;

        public bool ReadFirst => _left > 0;

        public void Ran(bool metRepeat) => _left = metRepeat ? BatchesAfterRepeat : Math.Max(0, _left - 1);
    }
}

/// <summary>One event reported by the merchant (server call or the browser snippet), as received.</summary>
public sealed class TrackedEvent : IOrderKeyed
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string Type { get; init; }
    public required string Email { get; init; }
    public string? Name { get; init; }
    public string? OrderId { get; init; }
    public decimal? PurchaseValue { get; init; }
    public string? Currency { get; init; }
    public string? Ip { get; init; }
    public string? UserAgent { get; init; }
    public string? ReferralCode { get; init; }
    public string? ClickId { get; init; }

    /// <summary><see cref="EventSource"/>; a browser-reported event turns <c>server</c> when the server reports it too.</summary>
    public string Source { get; set; } = EventSource.Server;

    /// <summary>The client's <c>Idempotency-Key</c>; a retry with the same key is answered from <see cref="Outcome"/>.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Free-form properties as a JSON object.</summary>
    public string? Properties { get; init; }

    /// <summary>The friend the event is about, once attributed.</summary>
    public string? ParticipantId { get; set; }

    public string? ReferralId { get; set; }

    /// <summary>
    /// A refund's (or chargeback's) order id: the purchase it takes back. Kept apart from <see cref="OrderId"/>, which
    /// stays unique to the purchase; one refund per order, so a repeated refund is answered as the first.
    /// </summary>
    public string? RefundOf { get; init; }

    /// <summary>The 202 answer as JSON, replayed to retries.</summary>
    public string? Outcome { get; set; }

    public DateTimeOffset OccurredAt { get; init; }
    public DateTimeOffset ReceivedAt { get; init; }
}

internal sealed class TrackedEventConfiguration : IEntityTypeConfiguration<TrackedEvent>
{
    public void Configure(EntityTypeBuilder<TrackedEvent> e)
    {
        e.ToTable("events");
        e.HasKey(x => x.Id);
        e.Property(x => x.Id).HasMaxLength(40);
        e.Property(x => x.CampaignId).HasMaxLength(40);
        e.Property(x => x.Type).HasMaxLength(64);
        e.Property(x => x.Email).HasMaxLength(254);
        e.Property(x => x.Name).HasMaxLength(200);
        e.Property(x => x.OrderId).HasMaxLength(200);
        e.Property(x => x.Currency).HasMaxLength(3);
        e.Property(x => x.Ip).HasMaxLength(45);
        e.Property(x => x.UserAgent).HasMaxLength(512);
        e.Property(x => x.ReferralCode).HasMaxLength(32);
        e.Property(x => x.ClickId).HasMaxLength(40);
        e.Property(x => x.Source).HasMaxLength(16).HasDefaultValue(EventSource.Server);
        e.Property(x => x.IdempotencyKey).HasMaxLength(200);
        e.Property(x => x.ParticipantId).HasMaxLength(40);
        e.Property(x => x.ReferralId).HasMaxLength(40);
        e.Property(x => x.RefundOf).HasMaxLength(200);
        // Partial indexes: an event without an order id, key or refund costs these indexes nothing (most events carry
        // no idempotency key, sign-ups no order id, and only refunds a RefundOf).
        e.HasIndex(x => new { x.CampaignId, x.OrderId }).IsUnique().HasFilter("\"OrderId\" IS NOT NULL");
        e.HasIndex(x => new { x.CampaignId, x.IdempotencyKey }).IsUnique().HasFilter("\"IdempotencyKey\" IS NOT NULL");
        e.HasIndex(x => new { x.CampaignId, x.RefundOf }).IsUnique().HasFilter("\"RefundOf\" IS NOT NULL");
        e.HasIndex(x => new { x.CampaignId, x.Email });
        e.HasIndex(x => x.ParticipantId);
    }
}
