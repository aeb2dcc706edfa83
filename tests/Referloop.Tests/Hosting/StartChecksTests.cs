using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Referloop.Http;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Hosting;

/// <summary>Settings that would put a stranger's host into links, or believe any client about its address, stop the start.</summary>
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

    [Fact]
    public async Task The_retired_TrustForwardedHeaders_setting_stops_the_start_and_names_its_replacement()
    {
        await using var database = await ProcessDatabase.CreateAsync();

        var (exitCode, output) = await ServerProcess.RunUntilExitAsync(database,
            new Dictionary<string, string> { ["Http:TrustForwardedHeaders"] = "true" }, TimeSpan.FromSeconds(60));

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Http:TrustForwardedHeaders is no longer supported", output);
        Assert.Contains("Http:TrustedProxies", output);
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

    [Fact]
    public void Trusted_proxies_are_read_from_a_list_or_an_array_of_addresses_and_networks()
    {
        var listed = TrustedProxies.Read(Settings(("Http:TrustedProxies", "10.0.0.5, 172.16.0.0/12,fd00::/8")), out var problem);
        Assert.Null(problem);
        Assert.Equal([IPAddress.Parse("10.0.0.5")], listed.Addresses);
        Assert.Equal([System.Net.IPNetwork.Parse("172.16.0.0/12"), System.Net.IPNetwork.Parse("fd00::/8")], listed.Networks);

        var array = TrustedProxies.Read(Settings(("Http:TrustedProxies:0", "10.0.0.5"), ("Http:TrustedProxies:1", "::1")), out problem);
        Assert.Null(problem);
        Assert.Equal([IPAddress.Parse("10.0.0.5"), IPAddress.IPv6Loopback], array.Addresses);

        var options = new ForwardedHeadersOptions();
        array.Configure(options);
        Assert.Equal(ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto, options.ForwardedHeaders);
        Assert.Equal([IPAddress.Parse("10.0.0.5"), IPAddress.IPv6Loopback], options.KnownProxies);
        Assert.Empty(options.KnownIPNetworks); // not even the framework's default loopback network
    }

    [Theory]
    [InlineData("proxy.internal")]
    [InlineData("10.0.0.0/8/8")]
    [InlineData("10.0.0.0/33")]
    public void A_trusted_proxy_that_is_not_an_address_or_network_stops_the_start(string entry)
    {
        TrustedProxies.Read(Settings(("Http:TrustedProxies", $"10.0.0.1,{entry}")), out var problem);
        Assert.Contains($"Http:TrustedProxies entry '{entry}'", problem);
    }

    [Fact]
    public void Without_trusted_proxies_no_forwarded_header_is_read()
    {
        var none = TrustedProxies.Read(Settings(), out var problem);
        Assert.Null(problem);

        var options = new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.All };
        none.Configure(options);
        Assert.Equal(ForwardedHeaders.None, options.ForwardedHeaders);
        Assert.Empty(options.KnownProxies);
        Assert.Empty(options.KnownIPNetworks);
    }

    private static IConfiguration Settings(params (string Key, string Value)[] settings) => new ConfigurationBuilder()
        .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
        .Build();

    private static HostingEnvironment Environment(string name) => new() { EnvironmentName = name };
}
