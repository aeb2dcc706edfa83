using System.Net;

namespace Referloop.Fraud;

/// <summary>Matching against a campaign's <c>blockedEmails</c> and <c>blockedIps</c> entries.</summary>
public static class BlockLists
{
    /// <summary>
    /// The entry that blocks <paramref name="email"/>, or null. An entry is an exact address (compared after
    /// <see cref="EmailIdentity.Normalise"/>, so a blocked Gmail address cannot come back with dots or a plus-tag),
    /// <c>*@domain</c>, or a bare domain; both domain forms also cover subdomains, as blocked senders switch to them.
    /// </summary>
    public static string? MatchEmail(IEnumerable<string> entries, string email)
    {
        var normalised = EmailIdentity.Normalise(email);
        var domain = EmailIdentity.Domain(email);
        foreach (var entry in entries)
        {
            var pattern = entry.Trim().ToLowerInvariant();
            if (pattern.StartsWith("*@", StringComparison.Ordinal))
            {
                if (domain.Length > 0 && EmailIdentity.IsWithin(domain, pattern[2..].TrimEnd('.')))
                {
                    return entry;
                }
            }
            else if (pattern.Contains('@'))
            {
                if (EmailIdentity.Normalise(pattern) == normalised)
                {
                    return entry;
                }
            }
            else if (pattern.Length > 0 && domain.Length > 0 && EmailIdentity.IsWithin(domain, pattern.TrimEnd('.')))
            {
                return entry;
            }
        }
        return null;
    }

    /// <summary>The entry (an address or a CIDR range) that covers <paramref name="ip"/>, or null.</summary>
    public static string? MatchIp(IEnumerable<string> entries, string? ip)
    {
        if (ParseIp(ip) is not { } address)
        {
            return null;
        }
        foreach (var entry in entries)
        {
            var text = entry.Trim();
            if (text.Contains('/'))
            {
                if (IPNetwork.TryParse(text, out var network) && network.Contains(address))
                {
                    return entry;
                }
            }
            else if (ParseIp(text) is { } blocked && blocked.Equals(address))
            {
                return entry;
            }
        }
        return null;
    }

    /// <summary>Parses an address and folds IPv4-mapped IPv6 (<c>::ffff:1.2.3.4</c>, as Kestrel may report it) to IPv4.</summary>
    public static IPAddress? ParseIp(string? ip)
    {
        if (string.IsNullOrWhiteSpace(ip) || !IPAddress.TryParse(ip.Trim(), out var address))
        {
            return null;
        }
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    /// <summary>The canonical text of an address, so that equal addresses compare equal as strings; null if not one.</summary>
    public static string? CanonicalIp(string? ip) => ParseIp(ip)?.ToString();
}
