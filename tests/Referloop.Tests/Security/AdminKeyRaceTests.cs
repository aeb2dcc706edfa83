using System.Data.Common;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Security;
using Referloop.Tests.Support;

namespace Referloop.Tests.Security;

/// <summary>
/// Two instances on one database started with the same REFERLOOP_ADMIN_KEY: both find the key missing and register
/// it; the unique index on the hash refuses the second, which must start all the same.
/// </summary>
public class AdminKeyRaceTests(AdminKeyRaceTests.RaceApp app) : IClassFixture<AdminKeyRaceTests.RaceApp>
{
    public sealed class RaceApp : ReferloopApp
    {
        public HashCheckBlinder Blinder { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Blinder);
        }
    }

    /// <summary>Makes the check for the key's hash miss, as when the other instance registers it just after the check.</summary>
    public sealed class HashCheckBlinder : DbCommandInterceptor
    {
        public volatile bool Blind;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (Blind && command.CommandText.StartsWith("SELECT", StringComparison.Ordinal)
                && command.CommandText.Contains("api_keys", StringComparison.Ordinal))
            {
                foreach (DbParameter parameter in command.Parameters)
                {
                    if (Equals(parameter.Value, Secrets.Hash(ReferloopApp.AdminKey)))
                    {
                        parameter.Value = "not-yet";
                    }
                }
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    [Fact]
    public async Task A_start_that_registers_the_key_another_instance_registered_meanwhile_goes_on()
    {
        app.Blinder.Blind = true;
        try
        {
            await app.Services.EnsureAdminKeyAsync();
        }
        finally
        {
            app.Blinder.Blind = false;
        }

        var hash = Secrets.Hash(ReferloopApp.AdminKey);
        Assert.Equal(1, await app.WithDb(db => db.ApiKeys.CountAsync(k => k.Hash == hash)));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateAdminClient().GetAsync("/api/v1/api-keys")).StatusCode);
    }
}

