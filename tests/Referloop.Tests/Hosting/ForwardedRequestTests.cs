using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Hosting;

/// <summary>
/// A webhook-capable server on a real loopback port: the test's requests arrive from 127.0.0.1 with the headers
/// they carry, exactly as a proxy's or a stranger's would.
/// </summary>
public abstract class LoopbackApp : WebhookApp
{
    protected LoopbackApp() => UseKestrel(0);

    public string BaseUrl => Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Urls"] = "http://127.0.0.1:0";
            return settings;
        }
    }

    public HttpClient CreateLoopbackAdminClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false })
    {
        BaseAddress = new Uri(BaseUrl),
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", AdminKey) },
    };
}

/// <summary>
/// Development without <c>PublicUrl</c>, configured as an upgrade would leave it: the retired
/// <c>Http:TrustForwardedHeaders</c> still on, and one proxy listed that is not the test's client.
/// </summary>
public sealed class UnlistedPeerApp : LoopbackApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["PublicUrl"] = "";
            settings["Http:TrustForwardedHeaders"] = "true";
            settings["Http:TrustedProxies"] = "192.0.2.1";
            return settings;
        }
    }
}

/// <summary><c>PublicUrl</c> configured, behind a proxy on 127.0.0.1 (the test's client) that is listed.</summary>
public sealed class ListedProxyApp : LoopbackApp
{
    public const string PublicUrl = "https://refer.shop.example";

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["PublicUrl"] = PublicUrl;
            settings["Http:TrustedProxies"] = "10.0.0.0/8, 127.0.0.1";
            return settings;
        }
    }
}

/// <summary>Shared steps: a campaign with a webhook endpoint, a join carrying chosen headers, a click.</summary>
public abstract class ForwardedRequestTestBase(LoopbackApp app) : IAsyncLifetime
{
    private readonly List<string> _endpoints = [];

    protected LoopbackApp App => app;

    protected HttpClient Client { get; } = app.CreateLoopbackAdminClient();

    public Task InitializeAsync()
    {
        // New endpoints receive only messages written from their creation on: a second later than the last test.
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var id in _endpoints)
        {
            await Client.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
        }
        Client.Dispose();
    }

    /// <summary>Joins a participant with <paramref name="headers"/> on the request; the share URL answered and the one the webhook carried.</summary>
    protected async Task<(string Answered, string Delivered, string Code)> Join(params (string Name, string Value)[] headers)
    {
        var campaign = await Client.CreateCampaign();
        await using var receiver = await Receiver.StartAsync();
        var endpoint = await Client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url(), campaignId = campaign, eventTypes = new[] { "participant.joined" } });
        _endpoints.Add((string)endpoint["id"]!);

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/campaigns/{campaign}/participants")
        {
            Content = JsonContent.Create(new { email = $"{Guid.NewGuid():N}@example.com" }),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        var response = await Client.SendAsync(request);
        response.EnsureStatus(HttpStatusCode.Created);
        var joined = await response.ReadJson();

        var delivered = JsonNode.Parse((await receiver.WaitForAsync(1)).Body)!;
        return ((string)joined["shareUrl"]!, (string)delivered["data"]!["participant"]!["shareUrl"]!, (string)joined["code"]!);
    }

    /// <summary>Follows a share link with <paramref name="headers"/>; the click's recorded address and whether its cookie is Secure.</summary>
    protected async Task<(string? Ip, bool SecureCookie)> Click(string code, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/r/{code}");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        var response = await Client.SendAsync(request);
        response.EnsureStatus(HttpStatusCode.Found);
        var cookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("rl_click="));
        var clickId = cookie["rl_click=".Length..cookie.IndexOf(';')];
        var ip = await App.WithDb(db => db.Clicks.AsNoTracking().Where(c => c.Id == clickId).Select(c => c.Ip).SingleAsync());
        return (ip, cookie.Contains("; secure", StringComparison.OrdinalIgnoreCase));
    }
}

public class UnlistedPeerTests(UnlistedPeerApp app) : ForwardedRequestTestBase(app), IClassFixture<UnlistedPeerApp>
{
    [Fact]
    public async Task Share_urls_ignore_the_Host_header_and_use_the_servers_own_address()
    {
        var (answered, delivered, code) = await Join(("Host", "evil.example"));

        Assert.Equal($"{App.BaseUrl}/r/{code}", answered);
        Assert.Equal(answered, delivered);
    }

    [Fact]
    public async Task Share_urls_ignore_X_Forwarded_Host()
    {
        var (answered, delivered, code) = await Join(("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https"));

        Assert.Equal($"{App.BaseUrl}/r/{code}", answered);
        Assert.Equal(answered, delivered);
    }

    [Fact]
    public async Task Forwarded_address_and_scheme_from_a_peer_that_is_not_a_listed_proxy_are_ignored()
    {
        var (_, _, code) = await Join();

        var (ip, secure) = await Click(code, ("X-Forwarded-For", "203.0.113.50"), ("X-Forwarded-Proto", "https"));

        Assert.Equal("127.0.0.1", ip);
        Assert.False(secure);
    }
}

public class ListedProxyTests(ListedProxyApp app) : ForwardedRequestTestBase(app), IClassFixture<ListedProxyApp>
{
    [Fact]
    public async Task A_listed_proxy_reports_the_clients_address_and_scheme()
    {
        var (_, _, code) = await Join();

        var (ip, secure) = await Click(code, ("X-Forwarded-For", "203.0.113.50"), ("X-Forwarded-Proto", "https"));

        Assert.Equal("203.0.113.50", ip);
        Assert.True(secure);
    }

    [Fact]
    public async Task Through_a_chain_of_listed_proxies_the_first_unlisted_hop_is_the_client()
    {
        var (_, _, code) = await Join();

        // The client claims 198.51.100.9; 203.0.113.50 handed it to the listed 10.1.2.3, which handed it to the test's 127.0.0.1.
        var (ip, _) = await Click(code, ("X-Forwarded-For", "198.51.100.9, 203.0.113.50, 10.1.2.3"));

        Assert.Equal("203.0.113.50", ip);
    }

    [Fact]
    public async Task Share_urls_are_the_configured_PublicUrl_whatever_the_request_says_its_host_is()
    {
        var (answered, delivered, code) = await Join(("Host", "evil.example"), ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "http"));

        Assert.Equal($"{ListedProxyApp.PublicUrl}/r/{code}", answered);
        Assert.Equal(answered, delivered);
    }
}
