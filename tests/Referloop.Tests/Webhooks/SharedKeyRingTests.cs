using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>A second instance on the first one's database that only serves the API: the first one delivers.</summary>
public sealed class ApiOnlyInstance(string connectionString) : WebhookApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["ConnectionStrings:Referloop"] = connectionString;
            settings["Webhooks:DeliveryEnabled"] = "false";
            return settings;
        }
    }
}

/// <summary>The first instance: it delivers, and shares its database with <see cref="ApiOnlyInstance"/>.</summary>
public sealed class FirstInstance : WebhookApp
{
    public string SharedConnectionString => ConnectionString;
}

public class SharedKeyRingTests(FirstInstance app) : IClassFixture<FirstInstance>
{
    [Fact]
    public async Task An_ed25519_key_made_by_one_instance_signs_on_another()
    {
        if (!ReferloopApp.OnPostgres)
        {
            return;
        }
        var second = new ApiOnlyInstance(app.SharedConnectionString);
        await ((IAsyncLifetime)second).InitializeAsync();
        try
        {
            await using var receiver = await Receiver.StartAsync();
            var created = await second.CreateAdminClient().PostOk("/api/v1/webhook-endpoints",
                new { url = receiver.Url(), eventTypes = new[] { "referral.approved" }, signing = "ed25519" });
            app.Clock.Advance(TimeSpan.FromSeconds(1));

            await app.Publish(EventTypes.ReferralApproved);
            var request = await receiver.WaitForAsync(1);

            var node = await Node.VerifyEd25519((string)created["publicKey"]!, request);
            Assert.True((bool)node["ok"]!, node.ToJsonString());
            Assert.Single(await app.Db(db => db.DataProtectionKeys.AsNoTracking().ToListAsync()));
        }
        finally
        {
            await ((IAsyncLifetime)second).DisposeAsync();
        }
    }
}
