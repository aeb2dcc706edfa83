using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Referloop.Tests.Support;

/// <summary>
/// The in-memory test server has no connection address. A test that needs one (rate limits, the IP checks of
/// browser events, repeated clicks) names it in <see cref="Header"/>; the server sees it as the peer's address.
/// </summary>
public sealed class ClientAddress : IStartupFilter
{
    public const string Header = "X-Test-Ip";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((http, nextMiddleware) =>
        {
            if (IPAddress.TryParse(http.Request.Headers[Header].ToString(), out var address))
            {
                http.Connection.RemoteIpAddress = address;
            }
            return nextMiddleware(http);
        });
        next(app);
    };
}
