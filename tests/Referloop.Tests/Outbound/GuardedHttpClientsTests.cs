using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;
using Referloop.Outbound;
using Referloop.Rewards;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Outbound;

public class GuardedHttpClientsTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    /// <summary>
    /// Every client name the container configures, plus the default client (<c>CreateClient()</c>) and a name nobody
    /// registered: the factory creates a client for any name, so each of those must be guarded too.
    /// </summary>
    private static List<string> ClientNames(IServiceProvider services) =>
        services.GetServices<IConfigureOptions<HttpClientFactoryOptions>>().Cast<object>()
            .Concat(services.GetServices<IPostConfigureOptions<HttpClientFactoryOptions>>())
            // ConfigureNamedOptions<…> of every arity has a Name; null is "every client" (ConfigureHttpClientDefaults).
            .Select(o => o.GetType().GetProperty("Name")?.GetValue(o) as string)
            .OfType<string>()
            .Append(Options.DefaultName)
            .Append("registered-by-nobody")
            .Distinct()
            .ToList();

    /// <summary>What is wrong with each client that does not connect through the guard; empty when all do.</summary>
    private static List<string> Unguarded(IServiceProvider services)
    {
        var guard = services.GetRequiredService<NetworkGuard>();
        var handlers = services.GetRequiredService<IHttpMessageHandlerFactory>();
        var problems = new List<string>();
        foreach (var name in ClientNames(services))
        {
            HttpMessageHandler? handler = handlers.CreateHandler(name);
            while (handler is DelegatingHandler delegating)
            {
                handler = delegating.InnerHandler;
            }
            if (handler is not SocketsHttpHandler sockets)
            {
                problems.Add($"'{name}': primary handler is {handler?.GetType().Name ?? "null"}, not a SocketsHttpHandler");
                continue;
            }
            if (!ReferenceEquals(sockets.ConnectCallback?.Target, guard) || sockets.ConnectCallback.Method.Name != nameof(NetworkGuard.ConnectAsync))
            {
                problems.Add($"'{name}': connects without the guard");
            }
            if (sockets.UseProxy)
            {
                problems.Add($"'{name}': uses a proxy");
            }
            if (sockets.AllowAutoRedirect)
            {
                problems.Add($"'{name}': follows redirects");
            }
            if (sockets.UseCookies)
            {
                problems.Add($"'{name}': keeps cookies");
            }
        }
        return problems;
    }

    [Fact]
    public void Every_http_client_of_the_app_connects_through_the_guard_without_proxy_redirects_or_cookies()
    {
        var names = ClientNames(app.Services);
        Assert.Contains(DeliverySender.ClientName, names);
        Assert.Contains(CouponAllocator.HttpClientName, names);

        Assert.Empty(Unguarded(app.Services));
    }

    [Fact]
    public void A_client_keeps_its_own_timeouts_under_the_guard()
    {
        HttpMessageHandler? handler = app.Services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler(CouponAllocator.HttpClientName);
        while (handler is DelegatingHandler delegating)
        {
            handler = delegating.InnerHandler;
        }

        Assert.Equal(CouponAllocator.CreateCouponTimeout, Assert.IsType<SocketsHttpHandler>(handler).ConnectTimeout);
    }

    [Fact]
    public void A_client_registered_later_with_its_own_handler_is_reported_and_a_plain_one_is_guarded_by_default()
    {
        var services = new ServiceCollection();
        services.AddGuardedHttpClient("guarded", (_, _) => { });
        services.AddHttpClient("plain");
        services.AddHttpClient("rogue").ConfigurePrimaryHttpMessageHandler(() => new HttpClientHandler());
        services.AddHttpClient("proxied").ConfigurePrimaryHttpMessageHandler((handler, _) =>
        {
            var sockets = (SocketsHttpHandler)handler;
            sockets.UseProxy = true;
            sockets.Proxy = new WebProxy("http://proxy.example.com:3128");
        });
        using var provider = services.BuildServiceProvider();

        Assert.Equal(
            ["'proxied': uses a proxy", "'rogue': primary handler is HttpClientHandler, not a SocketsHttpHandler"],
            Unguarded(provider).Order());
    }
}
