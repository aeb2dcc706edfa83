using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Security;

/// <summary>
/// Two revocations at once of the last two active full-scope keys: each must not see the other's key as the one
/// that stays active. The second is refused as the last key.
/// </summary>
public class ApiKeyRevokeRaceTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [PostgresFact]
    public async Task Revoking_the_last_two_full_keys_at_once_leaves_one_active()
    {
        var admin = app.CreateAdminClient();
        var second = (string)(await admin.PostOk("/api/v1/api-keys", new { name = "second" }))["id"]!;
        var hash = Secrets.Hash(ReferloopApp.AdminKey);
        var first = await app.WithDb(db => db.ApiKeys.Where(k => k.Hash == hash).Select(k => k.Id).SingleAsync());

        // Another transaction holds the keys' rows: both revocations wait for it, then go in turn.
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var holder = await db.Database.BeginTransactionAsync();
        await db.Database.ExecuteSqlAsync($"""SELECT 1 FROM api_keys ORDER BY "Id" FOR UPDATE""");
        Task<int> WaitingOnLocks() => app.WithDb(d => d.Database.SqlQuery<int>($"""
            SELECT count(*)::int AS "Value" FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            """).SingleAsync());
        var revocations = new[] { admin.DeleteAsync($"/api/v1/api-keys/{first}"), admin.DeleteAsync($"/api/v1/api-keys/{second}") };
        await EngineKit.Eventually(async () => await WaitingOnLocks() == 2, "both revocations wait for the keys");
        await holder.RollbackAsync();
        await holder.DisposeAsync();
        var answers = await Task.WhenAll(revocations);

        Assert.Equal([HttpStatusCode.NoContent, HttpStatusCode.Conflict], answers.Select(a => a.StatusCode).Order());
        Assert.Equal(1, await app.WithDb(d => d.ApiKeys.CountAsync(k => k.Scope == ApiKeyScope.Full && k.RevokedAt == null)));
    }
}
