using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Rewards;
using Referloop.Tests.Support;

namespace Referloop.Tests.Rewards;

/// <summary>A server whose database a second server instance can share.</summary>
public sealed class SharedDatabaseApp : ReferloopApp
{
    /// <summary>Another Referloop instance on the same database, with the same clock.</summary>
    public WebApplicationFactory<Program> SecondInstance() => new SecondServer(Settings, Clock);

    private sealed class SecondServer(IDictionary<string, string?> settings, TimeProvider clock) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }
            builder.ConfigureTestServices(services => services.AddSingleton(clock));
        }
    }
}

public class CouponInstancesTests(SharedDatabaseApp app) : IClassFixture<SharedDatabaseApp>
{
    [Fact]
    public async Task Two_server_instances_on_one_database_never_hand_out_a_code_twice()
    {
        await using var second = app.SecondInstance();
        var client = app.CreateAdminClient();
        var campaign = await client.CreateCampaign();
        await client.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons",
            new { codes = Enumerable.Range(1, 50).Select(i => $"SHARED-{i:000}") }, HttpStatusCode.OK);
        IServiceProvider[] instances = [app.Services, second.Services];

        var results = await Task.WhenAll(Enumerable.Range(0, 80).Select(i => Task.Run(async () =>
        {
            await using var scope = instances[i % 2].CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<CouponAllocator>()
                .AllocateAsync(campaign, "welcome10", $"rwd_{i:000}", $"par_{i:000}", CancellationToken.None);
        })));

        var codes = results.Where(r => r.Succeeded).Select(r => r.Code!).ToList();
        Assert.Equal(50, codes.Count);
        Assert.Equal(50, codes.Distinct().Count());
        Assert.All(results.Where(r => !r.Succeeded), r => Assert.Equal("coupon pool 'welcome10' is empty", r.FailureReason));
    }
}
