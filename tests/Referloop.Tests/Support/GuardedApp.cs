using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Outbound;

namespace Referloop.Tests.Support;

/// <summary>A DNS whose answers the test decides, so that a name can change its address after creation.</summary>
public sealed class ScriptedDns : IOutboundDns
{
    public ConcurrentDictionary<string, IPAddress[]> Answers { get; } = new(StringComparer.OrdinalIgnoreCase)
    {
        ["localhost"] = [IPAddress.Loopback],
        ["intranet.example.com"] = [IPAddress.Parse("10.20.30.40")],
        ["metadata.example.com"] = [IPAddress.Parse("169.254.169.254")],
    };

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) =>
        Answers.TryGetValue(host, out var addresses)
            ? Task.FromResult(addresses)
            : Task.FromException<IPAddress[]>(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound));
}

/// <summary>The production default, private networks not allowed, with DNS answers that the test decides.</summary>
public sealed class GuardedApp : ReferloopApp
{
    public ScriptedDns Dns { get; } = new();

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:PollInterval"] = "00:00:00.050";
            return settings;
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services => services.AddSingleton<IOutboundDns>(Dns));
    }
}
