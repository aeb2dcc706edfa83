using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tests.Support;

namespace Referloop.Tests.Storage;

/// <summary>
/// The migration <c>ReferralHistoryInRow</c> moves each referral's rows of the dropped table <c>referral_history</c>
/// into its <c>History</c> column: a database written before it keeps every status change, in order, to the tick
/// the provider stores (100 ns on SQLite, 1 µs on PostgreSQL).
/// </summary>
public sealed class ReferralHistoryMigrationTests : IAsyncLifetime
{
    private const string MigrationName = "ReferralHistoryInRow";

    private readonly string _databaseName = $"referloop_test_{Guid.NewGuid():N}";
    private string SqlitePath => Path.Combine(Path.GetTempPath(), _databaseName + ".db");

    private static string PostgresServer => new NpgsqlConnectionStringBuilder(
        Environment.GetEnvironmentVariable("REFERLOOP_TEST_PG") ?? "Host=localhost;Username=referloop_test;Password=referloop_test")
    {
        Database = "postgres",
    }.ToString();

    private ReferloopDb NewDb()
    {
        if (ReferloopApp.OnPostgres)
        {
            // A server whose sessions are not on UTC must not shift the times it moves.
            var connection = new NpgsqlConnectionStringBuilder(PostgresServer) { Database = _databaseName, Timezone = "Europe/Berlin" };
            return new PostgresReferloopDb(new DbContextOptionsBuilder<PostgresReferloopDb>()
                .UseNpgsql(connection.ToString(), npgsql => npgsql.MigrationsHistoryTable("__migrations")).Options);
        }
        return new SqliteReferloopDb(new DbContextOptionsBuilder<SqliteReferloopDb>()
            .UseSqlite($"Data Source={SqlitePath}", sqlite => sqlite.MigrationsHistoryTable("__migrations")).Options);
    }

    [Fact]
    public async Task The_history_rows_move_into_the_referral_in_order_with_their_exact_times()
    {
        // The smallest step each provider keeps: the second and third change lie within one millisecond.
        var step = ReferloopApp.OnPostgres ? TimeSpan.FromTicks(10) : TimeSpan.FromTicks(1);
        var joined = new DateTimeOffset(2026, 11, 30, 23, 59, 59, TimeSpan.Zero).AddTicks(9_999_990);
        var qualified = new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero).AddTicks(1_230);
        var approved = qualified + step;
        var created = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

        await using (var before = NewDb())
        {
            var migrations = before.Database.GetMigrations().ToList();
            var moving = migrations.FindIndex(m => m.EndsWith("_" + MigrationName, StringComparison.Ordinal));
            Assert.True(moving > 0, $"no migration {MigrationName}");
            await before.GetService<IMigrator>().MigrateAsync(migrations[moving - 1]);

            // Only the columns the schema of that time requires without a default; times as each provider stores them.
            object Time(DateTimeOffset at) => before.OnSqlite ? at.UtcTicks : at;
            await before.Database.ExecuteSqlRawAsync("""
                INSERT INTO campaigns ("Id", "AllowRewardsOnAutoApproved", "Approval", "AttributionWindowDays", "CreatedAt", "Fraud",
                    "HoldingPeriodDays", "LandingUrl", "Name", "PublishableKey", "Rewards", "Status", "UpdatedAt")
                VALUES ('cmp_h', {0}, 'auto', 30, {1}, '{{}}', 0, 'https://shop.example.com', 'History', 'pk_h', '[]', 'active', {1})
                """, false, Time(created));
            await before.Database.ExecuteSqlRawAsync("""
                INSERT INTO participants ("Id", "CampaignId", "Code", "CreatedAt", "Email", "IsInvited", "IsReferrer", "UpdatedAt")
                VALUES ('par_ann', 'cmp_h', 'ANNCODE1', {0}, 'ann@example.com', {1}, {2}, {0}),
                       ('par_bob', 'cmp_h', 'BOBCODE1', {0}, 'bob@example.net', {2}, {1}, {0})
                """, Time(created), false, true);
            await before.Database.ExecuteSqlRawAsync("""
                INSERT INTO referrals ("Id", "AdvocateId", "AttributedBy", "AutoApproved", "CampaignId", "CreatedAt", "Findings",
                    "FriendId", "RiskScore", "Status", "UpdatedAt")
                VALUES ('ref_h', 'par_ann', 'code', {0}, 'cmp_h', {1}, '[]', 'par_bob', 0, 'approved', {2})
                """, true, Time(created), Time(approved));
            // Written out of order: the migration orders by id, as the history was read before.
            await before.Database.ExecuteSqlRawAsync("""
                INSERT INTO referral_history ("Id", "ReferralId", "From", "To", "Reason", "At")
                VALUES ('rsc_3', 'ref_h', 'qualified', 'approved', 'auto-approved', {2}),
                       ('rsc_1', 'ref_h', NULL, 'pending', 'signup via code', {0}),
                       ('rsc_2', 'ref_h', 'pending', 'qualified', 'purchase ORD-1', {1})
                """, Time(joined), Time(qualified), Time(approved));

            await before.Database.MigrateAsync();
        }

        await using var after = NewDb();
        Assert.Empty(await after.Database.GetPendingMigrationsAsync());
        var referral = await after.Referrals.AsNoTracking().SingleAsync(r => r.Id == "ref_h");

        Assert.Equal(
            [
                new ReferralStatusChange(null, ReferralStatus.Pending, "signup via code", joined),
                new ReferralStatusChange(ReferralStatus.Pending, ReferralStatus.Qualified, "purchase ORD-1", qualified),
                new ReferralStatusChange(ReferralStatus.Qualified, ReferralStatus.Approved, "auto-approved", approved),
            ],
            referral.History);
        // DateTimeOffset equality compares instants; the ticks say no digit was lost on the way, and the offsets say the
        // entries are in UTC like those the application writes, though the migrating session's time zone is not.
        Assert.Equal([joined.UtcTicks, qualified.UtcTicks, approved.UtcTicks], referral.History.Select(h => h.At.UtcTicks));
        Assert.All(referral.History, h => Assert.Equal(TimeSpan.Zero, h.At.Offset));
    }

    public async Task InitializeAsync()
    {
        if (ReferloopApp.OnPostgres)
        {
            await using var connection = new NpgsqlConnection(PostgresServer);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_databaseName}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (ReferloopApp.OnPostgres)
        {
            NpgsqlConnection.ClearAllPools();
            await using var connection = new NpgsqlConnection(PostgresServer);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_databaseName}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }
        else
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(SqlitePath + suffix);
            }
        }
    }
}
