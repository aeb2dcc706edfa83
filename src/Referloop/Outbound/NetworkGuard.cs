using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Referloop.Webhooks;

namespace Referloop.Outbound;

/// <summary>Resolves host names; a seam so that tests can play a DNS answer that changes after creation.</summary>
public interface IOutboundDns
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct);
}

internal sealed class SystemOutboundDns : IOutboundDns
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) => Dns.GetHostAddressesAsync(host, ct);
}

/// <summary>A send refused by the SSRF guard; its message is what the attempt log shows.</summary>
public sealed class ForbiddenAddressException(string message) : HttpRequestException(message);

/// <summary>
/// The SSRF guard: URLs that Referloop calls (webhook endpoints, create-coupon URLs) must not reach loopback,
/// private, link-local, metadata or otherwise non-public addresses. Checked when a URL is saved and again at connect
/// time, against the address actually connected to, because DNS answers can change between the two.
/// <c>Webhooks:AllowPrivateNetworks</c> (named when webhooks were the only outbound calls) turns it off for all of them,
/// except for the cloud metadata services and link-local addresses, which hand out the host's credentials and which no
/// receiver needs.
/// </summary>
public sealed class NetworkGuard(IOutboundDns dns, IOptions<WebhookOptions> options)
{
    public bool AllowPrivateNetworks => options.Value.AllowPrivateNetworks;

    /// <summary>First match wins, so a narrow range with its own reason comes before the wide one around it.</summary>
    private static readonly (IPNetwork Range, string Reason)[] ForbiddenV4 =
    [
        (IPNetwork.Parse("169.254.169.254/32"), "cloud metadata"),
        (IPNetwork.Parse("0.0.0.0/8"), "unspecified"),
        (IPNetwork.Parse("127.0.0.0/8"), "loopback"),
        (IPNetwork.Parse("10.0.0.0/8"), "private"),
        (IPNetwork.Parse("172.16.0.0/12"), "private"),
        (IPNetwork.Parse("192.168.0.0/16"), "private"),
        (IPNetwork.Parse("169.254.0.0/16"), "link-local"),
        // Also where Alibaba Cloud's metadata service lives (100.100.100.200).
        (IPNetwork.Parse("100.64.0.0/10"), "carrier-grade NAT"),
        // Also where Oracle Cloud's metadata service lives (192.0.0.192).
        (IPNetwork.Parse("192.0.0.0/24"), "IETF protocol assignment"),
        (IPNetwork.Parse("192.0.2.0/24"), "documentation"),
        (IPNetwork.Parse("198.51.100.0/24"), "documentation"),
        (IPNetwork.Parse("203.0.113.0/24"), "documentation"),
        (IPNetwork.Parse("198.18.0.0/15"), "benchmarking"),
        (IPNetwork.Parse("224.0.0.0/4"), "multicast"),
        (IPNetwork.Parse("255.255.255.255/32"), "broadcast"),
        (IPNetwork.Parse("240.0.0.0/4"), "reserved"),
    ];

    private static readonly (IPNetwork Range, string Reason)[] ForbiddenV6 =
    [
        (IPNetwork.Parse("::1/128"), "loopback"),
        (IPNetwork.Parse("::/128"), "unspecified"),
        (IPNetwork.Parse("fd00:ec2::254/128"), "cloud metadata"),
        // RFC 8215: NAT64 inside one's own network, so it leads to whatever the local translator reaches.
        (IPNetwork.Parse("64:ff9b:1::/48"), "local-use NAT64"),
        // A Teredo address hides its IPv4 end behind an obfuscated, relay-dependent encoding: refused outright.
        (IPNetwork.Parse("2001::/32"), "Teredo"),
        (IPNetwork.Parse("2001:db8::/32"), "documentation"),
        (IPNetwork.Parse("fc00::/7"), "private"),
        (IPNetwork.Parse("fec0::/10"), "private"),
        (IPNetwork.Parse("fe80::/10"), "link-local"),
        (IPNetwork.Parse("ff00::/8"), "multicast"),
    ];

    /// <summary>What stays refused with <c>Webhooks:AllowPrivateNetworks</c>: where cloud hosts serve instance credentials.</summary>
    private static readonly (IPNetwork Range, string Reason)[] MetadataV4 =
    [
        (IPNetwork.Parse("169.254.0.0/16"), "link-local or cloud metadata"),
        (IPNetwork.Parse("100.100.100.200/32"), "cloud metadata"),
        (IPNetwork.Parse("192.0.0.192/32"), "cloud metadata"),
    ];

    private static readonly (IPNetwork Range, string Reason)[] MetadataV6 =
    [
        (IPNetwork.Parse("fd00:ec2::254/128"), "cloud metadata"),
        (IPNetwork.Parse("fe80::/10"), "link-local"),
    ];

    /// <summary>IPv6 ranges that carry an IPv4 address, and the byte where it starts: that address decides.</summary>
    private static readonly (IPNetwork Range, int Offset)[] EmbeddingV4 =
    [
        (IPNetwork.Parse("::ffff:0:0/96"), 12), // IPv4-mapped
        (IPNetwork.Parse("::/96"), 12), // IPv4-compatible (deprecated, still parsed and routed by some stacks)
        (IPNetwork.Parse("::ffff:0:0:0/96"), 12), // IPv4-translated (SIIT)
        (IPNetwork.Parse("64:ff9b::/96"), 12), // NAT64 well-known prefix
        (IPNetwork.Parse("2002::/16"), 2), // 6to4
    ];

    /// <summary>Why an address may not be called, or null when it may.</summary>
    public static string? Forbidden(IPAddress address) => Match(address, ForbiddenV6, ForbiddenV4);

    /// <summary>Why an address may not be called even on a private network, or null when it may.</summary>
    public static string? ForbiddenOnPrivateNetworks(IPAddress address) => Match(address, MetadataV6, MetadataV4);

    private string? Refusal(IPAddress address) => AllowPrivateNetworks ? ForbiddenOnPrivateNetworks(address) : Forbidden(address);

    private string Hint => AllowPrivateNetworks ? "" : " (Webhooks:AllowPrivateNetworks is off)";

    private static string? Match(IPAddress address, (IPNetwork Range, string Reason)[] v6, (IPNetwork Range, string Reason)[] v4)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            foreach (var (range, reason) in v6)
            {
                if (range.Contains(address))
                {
                    return reason;
                }
            }
            foreach (var (range, offset) in EmbeddingV4)
            {
                if (range.Contains(address))
                {
                    address = new IPAddress(address.GetAddressBytes().AsSpan(offset, 4));
                    break;
                }
            }
        }
        foreach (var (range, reason) in v4)
        {
            if (range.Contains(address))
            {
                return reason;
            }
        }
        return null;
    }

    private static string Article(string reason) => "aeiouAEIOU".Contains(reason[0]) ? "an" : "a";

    /// <summary>
    /// Checks a URL before it is saved. A name that does not resolve now is accepted (it may be set up later);
    /// the connect-time check still applies when it is called.
    /// </summary>
    public async Task<string?> CheckUrlAsync(string url, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (uri.IdnHost.Length > 253)
        {
            return "must have a host name of at most 253 characters.";
        }
        IPAddress[] addresses;
        if (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var literal))
        {
            addresses = [literal];
        }
        else if (AllowPrivateNetworks)
        {
            // A name is checked when it is called: on a private network it may well resolve only there.
            return null;
        }
        else
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(3));
                addresses = await dns.ResolveAsync(uri.IdnHost, timeout.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                return null;
            }
        }
        foreach (var address in addresses)
        {
            if (Refusal(address) is { } reason)
            {
                return $"must not point at {Article(reason)} {reason} address ({uri.Host} is {address})" + (AllowPrivateNetworks ? "."
                    : "; set Webhooks:AllowPrivateNetworks=true to allow it on a private network.");
            }
        }
        return null;
    }

    /// <summary>
    /// <see cref="SocketsHttpHandler.ConnectCallback"/>: resolves the host itself and refuses the connection when
    /// any address it resolves to is forbidden, so a DNS answer that changed since creation cannot slip through.
    /// </summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await dns.ResolveAsync(host, ct);
        foreach (var address in addresses)
        {
            if (Refusal(address) is { } reason)
            {
                throw new ForbiddenAddressException($"Refused to connect: {host} resolves to {address}, {Article(reason)} {reason} address{Hint}.");
            }
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
