using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Referloop.Outbound;

/// <summary>
/// The one way Referloop registers an HttpClient. Every URL it calls (webhooks, test sends, create-coupon) was typed
/// in by someone, so every client connects through the <see cref="NetworkGuard"/>.
/// </summary>
public static class GuardedHttpClients
{
    /// <summary>
    /// Registers a named client whose primary handler connects through the guard, without proxy, redirects or
    /// cookies. <paramref name="configureHandler"/> may tune timeouts and pooling; the guard's settings are applied
    /// after it, so it cannot undo them.
    /// </summary>
    public static IHttpClientBuilder AddGuardedHttpClient(this IServiceCollection services, string name,
        Action<IServiceProvider, HttpClient> configureClient, Action<IServiceProvider, SocketsHttpHandler>? configureHandler = null)
    {
        services.AddNetworkGuard();
        return services.AddHttpClient(name, configureClient)
            .ConfigurePrimaryHttpMessageHandler(sp => CreateHandler(sp, configureHandler));
    }

    /// <summary>
    /// The guard and its DNS, and the guarded handler as every client's default: a client created by a name nobody
    /// registered (or by <c>CreateClient()</c> without one) is guarded too.
    /// </summary>
    public static IServiceCollection AddNetworkGuard(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(NetworkGuard)))
        {
            return services;
        }
        services.TryAddSingleton<IOutboundDns, SystemOutboundDns>();
        services.AddSingleton<NetworkGuard>();
        services.ConfigureHttpClientDefaults(client => client.ConfigurePrimaryHttpMessageHandler(sp => CreateHandler(sp, null)));
        return services;
    }

    private static SocketsHttpHandler CreateHandler(IServiceProvider sp, Action<IServiceProvider, SocketsHttpHandler>? configure)
    {
        var handler = new SocketsHttpHandler();
        configure?.Invoke(sp, handler);
        handler.ConnectCallback = sp.GetRequiredService<NetworkGuard>().ConnectAsync;
        // A proxy would be what gets connected to, and the guard would check the wrong address.
        handler.UseProxy = false;
        // A redirect would carry the request, signed, to a URL that nobody saved and no check at saving saw.
        handler.AllowAutoRedirect = false;
        handler.UseCookies = false;
        return handler;
    }
}
