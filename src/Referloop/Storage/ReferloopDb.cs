using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.InboundHooks;
using Referloop.Fraud;
using Referloop.Idempotency;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Security;
using Referloop.SocialProof;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Storage;

/// <summary>
/// The one database context. Each provider has a thin subclass so that it can keep its own migrations
/// (SQLite and PostgreSQL differ in column types); feature code only ever asks for <see cref="ReferloopDb"/>.
/// </summary>
public abstract class ReferloopDb(DbContextOptions options) : DbContext(options), IDataProtectionKeyContext
{
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Campaign> Campaigns => Set<Campaign>();
    public DbSet<Participant> Participants => Set<Participant>();
    public DbSet<Click> Clicks => Set<Click>();
    public DbSet<OutboxMessage> Outbox => Set<OutboxMessage>();
    public DbSet<InboundHook> InboundHooks => Set<InboundHook>();
    public DbSet<InboundRequest> InboundRequests => Set<InboundRequest>();
    public DbSet<SocialProofItem> SocialProofItems => Set<SocialProofItem>();
    public DbSet<ParticipantIp> ParticipantIps => Set<ParticipantIp>();
    public DbSet<CouponPool> CouponPools => Set<CouponPool>();
    public DbSet<Coupon> Coupons => Set<Coupon>();
    public DbSet<TrackedEvent> Events => Set<TrackedEvent>();
    public DbSet<InboxEvent> Inbox => Set<InboxEvent>();
    public DbSet<Referral> Referrals => Set<Referral>();
    public DbSet<Reward> Rewards => Set<Reward>();
    public DbSet<AdvocateCounter> AdvocateCounters => Set<AdvocateCounter>();
    public DbSet<WebhookEndpoint> WebhookEndpoints => Set<WebhookEndpoint>();
    public DbSet<WebhookDelivery> WebhookDeliveries => Set<WebhookDelivery>();
    public DbSet<WebhookAttempt> WebhookAttempts => Set<WebhookAttempt>();
    public DbSet<IdempotencyRecord> IdempotencyKeys => Set<IdempotencyRecord>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    /// <summary>
    /// Whether this context is on SQLite, for SQL written by hand. Known from the subclass: EF Core's
    /// <c>Database.IsSqlite()</c> reads the provider assembly's name on every call, which on the delivery path was
    /// a tenth of the server's busy time.
    /// </summary>
    public abstract bool OnSqlite { get; }

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(ReferloopDb).Assembly);
}

public sealed class SqliteReferloopDb(DbContextOptions<SqliteReferloopDb> options) : ReferloopDb(options)
{
    public override bool OnSqlite => true;

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // SQLite cannot order or compare DateTimeOffset in SQL; UTC ticks keep range queries on the server.
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UtcTicksConverter>();
    }
}

public sealed class PostgresReferloopDb(DbContextOptions<PostgresReferloopDb> options) : ReferloopDb(options)
{
    public override bool OnSqlite => false;
}
