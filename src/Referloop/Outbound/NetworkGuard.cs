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
/// The SSRF guard: webhook URLs must not reach loopback, private, link-local, CGNAT, unspecified, multicast or
/// cloud-metadata addresses. Checked when an endpoint is saved and again at connect time, against the address
/// actually connected to, because DNS answers can change between the two.
/// </summary>
public sealed class NetworkGuard(IOutboundDns dns, IOptions<WebhookOptions> options)
{
    public bool AllowPrivateNetworks => options.Value.AllowPrivateNetworks;

    /// <summary>Why an address may not be called, or null when it may.</summary>
    public static string? Forbidden(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address))
        {
            return "loopback";
        }
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return "unspecified";
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return (b[0], b[1]) switch
            {
                (169, 254) when b[2] == 169 && b[3] == 254 => "cloud metadata",
                (0, _) => "unspecified",
                (10, _) => "private",
                (172, >= 16 and <= 31) => "private",
                (192, 168) => "private",
                (169, 254) => "link-local",
                (100, >= 64 and <= 127) => "carrier-grade NAT",
                ( >= 224 and <= 239, _) => "multicast",
                (255, 255) when b[2] == 255 && b[3] == 255 => "broadcast",
                _ => null,
            };
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var b = address.GetAddressBytes();
            if (address.Equals(AwsMetadataV6))
            {
                return "cloud metadata";
            }
            if ((b[0] & 0xFE) == 0xFC)
            {
                return "private";
            }
            if (address.IsIPv6LinkLocal || (b[0] == 0xFE && (b[1] & 0xC0) == 0x80))
            {
                return "link-local";
            }
            if (address.IsIPv6Multicast)
            {
                return "multicast";
            }
            if (address.IsIPv6SiteLocal)
            {
                return "private";
            }
        }
        return null;
    }

    private static readonly IPAddress AwsMetadataV6 = IPAddress.Parse("fd00:ec2::254");

    /// <summary>
    /// Checks a URL before it is saved. A name that does not resolve now is accepted (it may be set up later);
    /// the connect-time check still applies when it is called.
    /// </summary>
    public async Task<string?> CheckUrlAsync(string url, CancellationToken ct)
    {
        if (AllowPrivateNetworks)
        {
            return null;
        }
        var uri = new Uri(url);
        IPAddress[] addresses;
        if (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var literal))
        {
            addresses = [literal];
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
            if (Forbidden(address) is { } reason)
            {
                return $"must not point at a {reason} address ({uri.Host} is {address}); " +
                    "set Webhooks:AllowPrivateNetworks=true to allow it on a private network.";
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
        if (!AllowPrivateNetworks)
        {
            foreach (var address in addresses)
            {
                if (Forbidden(address) is { } reason)
                {
                    throw new ForbiddenAddressException(
                        $"Refused to connect: {host} resolves to {address}, a {reason} address (Webhooks:AllowPrivateNetworks is off).");
                }
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
