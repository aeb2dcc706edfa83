using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Referloop.Http;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Hosting;

/// <summary>Settings that would put a stranger's host into links stop the start.</summary>
[Collection(ServerProcessCollection.Name)]
public class StartChecksTests
{
    [Fact]
    public async Task Outside_Development_the_server_refuses_to_start_without_PublicUrl_and_says_so()
    {
        await using var database = await ProcessDatabase.CreateAsync();

        var (exitCode, output) = await ServerProcess.RunUntilExitAsync(database, new Dictionary<string, string> { ["PublicUrl"] = "" },
            TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("PublicUrl is not set", output);
        Assert.Contains("Referloop__PublicUrl=", output);
    }

    [Theory]
    [InlineData("refer.shop.example.com")]
    [InlineData("/r")]
    [InlineData("ftp://refer.shop.example.com")]
    [InlineData("https://refer.shop.example.com/?from=config")]
    [InlineData("https://refer.shop.example.com/#top")]
    [InlineData("https://user:secret@refer.shop.example.com")]
    public void A_PublicUrl_that_is_not_an_absolute_http_url_is_refused_in_every_environment(string value)
    {
        foreach (var environment in new[] { Environments.Development, Environments.Production })
        {
            var problem = PublicUrls.Problem(Settings(("PublicUrl", value)), Environment(environment));
            Assert.NotNull(problem);
            Assert.StartsWith($"PublicUrl '{value}' is not usable", problem);
        }
    }

    [Theory]
    [InlineData("Development", "", true)]
    [InlineData("Production", "", false)]
    [InlineData("Staging", "", false)]
    [InlineData("Production", "https://refer.shop.example.com", true)]
    [InlineData("Production", "https://shop.example.com/referrals/", true)]
    [InlineData("Production", "http://10.0.0.5:8080", true)]
    public void PublicUrl_may_be_left_out_in_Development_only(string environment, string value, bool usable)
    {
        var problem = PublicUrls.Problem(Settings(("PublicUrl", value)), Environment(environment));
        Assert.Equal(usable, problem is null);
    }

    private static IConfiguration Settings(params (string Key, string Value)[] settings) => new ConfigurationBuilder()
        .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
        .Build();

    private static HostingEnvironment Environment(string name) => new() { EnvironmentName = name };
}
