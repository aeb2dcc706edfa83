using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;
using Referloop.Tests.Support;

namespace Referloop.Tests.Storage;

/// <summary>
/// On PostgreSQL a table that has grown from empty gets its statistics as soon as it holds a few hundred rows, without
/// waiting for autovacuum: the plans of the write path's prepared statements are made on them. SQLite has no such step
/// (the server never gathers SQLite's statistics; its queries are written to find their indexes without them).
/// </summary>
public class PostgresStatisticsTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task A_table_grown_from_empty_gets_statistics_once_it_holds_enough_rows()
    {
        var statistics = app.Services.GetService<PostgresStatistics>();
        if (!ReferloopApp.OnPostgres)
        {
            Assert.Null(statistics);
            return;
        }
        Assert.NotNull(statistics);
        // Autovacuum would analyse the tables too, within a minute of their first 50 rows: this test is about the server.
        await app.WithDb(db => db.Database.ExecuteSqlRawAsync(
            "ALTER TABLE events SET (autovacuum_enabled = false)"));
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign();

        await PostEventsAsync(admin, campaignId, 0, PostgresStatistics.RowsBeforeFirstAnalyze - 1);
        var (analysed, waiting) = await statistics.AnalyzeGrownAsync(CancellationToken.None);
        Assert.DoesNotContain("events", analysed);
        Assert.True(waiting > 0);
        Assert.Empty(await ColumnsWithStatisticsAsync("events"));

        await PostEventsAsync(admin, campaignId, PostgresStatistics.RowsBeforeFirstAnalyze - 1, 1);
        (analysed, _) = await statistics.AnalyzeGrownAsync(CancellationToken.None);
        Assert.Contains("events", analysed);
        Assert.Contains("OrderId", await ColumnsWithStatisticsAsync("events"));

        // Once is enough: autovacuum keeps them from here.
        (analysed, _) = await statistics.AnalyzeGrownAsync(CancellationToken.None);
        Assert.DoesNotContain("events", analysed);
    }

    private static async Task PostEventsAsync(HttpClient admin, string campaignId, int first, int count)
    {
        foreach (var chunk in Enumerable.Range(first, count).Chunk(50))
        {
            await Task.WhenAll(chunk.Select(i => admin.PostOk("/api/v1/events", new
            {
                campaignId,
                type = "purchase",
                email = $"shopper-{i}@example.net",
                orderId = $"first-{i}",
                purchaseValue = 20,
                currency = "USD",
            }, HttpStatusCode.Accepted)));
        }
    }

    private Task<List<string>> ColumnsWithStatisticsAsync(string table) => app.WithDb(db => db.Database
        .SqlQueryRaw<string>("""SELECT attname::text AS "Value" FROM pg_stats WHERE tablename = {0}""", table).ToListAsync());
}
