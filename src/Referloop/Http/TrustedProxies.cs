using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using IPNetwork = System.Net.IPNetwork;

namespace Referloop.Http;

/// <summary>
/// The proxies whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> Referloop believes (<c>Http:TrustedProxies</c>:
/// addresses and CIDR networks, as an array or one comma-separated list). A request whose immediate peer is one of
/// them gets the client address and scheme the proxy reports; every other request keeps its own, whatever headers
/// it carries. <c>X-Forwarded-Host</c> is never read: no URL Referloop builds depends on the request's host.
/// </summary>
public sealed record TrustedProxies(IReadOnlyList<IPAddress> Addresses, IReadOnlyList<IPNetwork> Networks)
{
    public const string Setting = "Http:TrustedProxies";
    private const string RetiredSetting = "Http:TrustForwardedHeaders";

    public bool Any => Addresses.Count > 0 || Networks.Count > 0;

    /// <summary>Reads <c>Http:TrustedProxies</c>; <paramref name="problem"/> says why the start must stop, if it must.</summary>
    public static TrustedProxies Read(IConfiguration configuration, out string? problem)
    {
        var section = configuration.GetSection(Setting);
        var entries = (section.Value is { } list ? [list] : section.GetChildren().Select(child => child.Value ?? ""))
            .SelectMany(entry => entry.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        var addresses = new List<IPAddress>();
        var networks = new List<IPNetwork>();
        problem = null;
        foreach (var entry in entries)
        {
            if (entry.Contains('/') && IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var address))
            {
                addresses.Add(address);
            }
            else
            {
                problem ??= $"{Setting} entry '{entry}' is neither an IP address nor a CIDR network (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8).";
            }
        }
        var proxies = new TrustedProxies(addresses, networks);
        if (problem is null && !proxies.Any && configuration.GetValue<bool>(RetiredSetting))
        {
            // It used to trust these headers from any peer, which let any client choose its own address.
            problem = $"{RetiredSetting} is no longer supported: it trusted X-Forwarded-* headers from anyone. List the " +
                $"proxies in front of Referloop instead, in {Setting} (e.g. Referloop__Http__TrustedProxies=10.0.0.5,172.16.0.0/12), " +
                $"and remove {RetiredSetting}.";
        }
        return proxies;
    }

    /// <summary>
    /// Sets the forwarded-headers options to exactly these proxies, replacing the framework's defaults (loopback)
    /// and whatever <c>ASPNETCORE_FORWARDEDHEADERS_ENABLED</c> would have put there (every peer).
    /// </summary>
    public void Configure(ForwardedHeadersOptions options)
    {
        options.ForwardedHeaders = Any ? ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto : ForwardedHeaders.None;
        // Through a chain of listed proxies to the first address none of them is; an unlisted hop stops the walk.
        options.ForwardLimit = null;
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        foreach (var address in Addresses)
        {
            options.KnownProxies.Add(address);
        }
        foreach (var network in Networks)
        {
            options.KnownIPNetworks.Add(network);
        }
    }
}
