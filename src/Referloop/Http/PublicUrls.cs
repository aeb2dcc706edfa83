using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Referloop.Http;

/// <summary>
/// Builds the absolute URLs Referloop hands out (share links, inbound hooks). They are stored and sent to other
/// systems (webhook payloads), so they come from configuration only, never from a request: <c>PublicUrl</c>, or in
/// Development, where it may be left out, the server's own listening address.
/// </summary>
public sealed class PublicUrls(IConfiguration configuration, IServer server, IHostApplicationLifetime lifetime)
{
    public const string Setting = "PublicUrl";

    private readonly string? _configured = Normalize(configuration[Setting]);
    private string? _own;

    public string Base => _configured ?? Own();

    public string ShareUrl(string code) => $"{Base}/r/{code}";

    /// <summary>The hosted page where people register for a share link (by the campaign's slug or id).</summary>
    public string JoinUrl(string campaign) => $"{Base}/join/{campaign}";

    /// <summary>An advocate's portal.</summary>
    public string PortalUrl(string token) => $"{Base}/p/{token}";

    /// <summary>
    /// Why the configured <c>PublicUrl</c> cannot be used, or null when it can: it must be an absolute http(s) URL
    /// without query or fragment, and outside Development it must be there at all.
    /// </summary>
    public static string? Problem(IConfiguration configuration, IHostEnvironment environment)
    {
        var value = configuration[Setting];
        if (string.IsNullOrWhiteSpace(value))
        {
            return environment.IsDevelopment() ? null :
                $"{Setting} is not set. Outside Development Referloop needs the public base of its links (share links, " +
                "inbound hook URLs), as the outside world reaches it: set PublicUrl in appsettings.json or the environment " +
                "(PublicUrl=https://refer.shop.example.com or Referloop__PublicUrl=https://refer.shop.example.com).";
        }
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
        {
            return $"{Setting} '{value}' is not usable: it must be an absolute http or https URL without user, query or " +
                "fragment, e.g. https://refer.shop.example.com.";
        }
        return null;
    }

    private static string? Normalize(string? value) =>
        string.IsNullOrWhiteSpace(value) ? null : value.Trim().TrimEnd('/');

    private string Own()
    {
        if (_own is not null)
        {
            return _own;
        }
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
            ?? addresses.FirstOrDefault();
        var own = address is null ? "http://localhost" : Reachable(address);
        // Before the start the addresses are the configured ones (port 0 not yet bound): remember only the real ones.
        if (lifetime.ApplicationStarted.IsCancellationRequested)
        {
            _own = own;
        }
        return own;
    }

    /// <summary>A wildcard listening address (<c>http://0.0.0.0:5080</c>, <c>http://+:80</c>) as a browser on this machine reaches it.</summary>
    private static string Reachable(string address)
    {
        var hostStart = address.IndexOf("://", StringComparison.Ordinal) + 3;
        var hostEnd = address[hostStart] == '['
            ? address.IndexOf(']', hostStart) + 1
            : address.IndexOfAny([':', '/'], hostStart);
        hostEnd = hostEnd <= 0 ? address.Length : hostEnd;
        var host = address[hostStart..hostEnd] is "0.0.0.0" or "[::]" or "+" or "*" ? "localhost" : address[hostStart..hostEnd];
        return (address[..hostStart] + host + address[hostEnd..]).TrimEnd('/');
    }
}
