namespace Referloop.Fraud;

/// <summary>
/// Reduces an email address to the mailbox it delivers to, so that <c>Ann.Lee+promo@googlemail.com</c> and
/// <c>annlee@gmail.com</c> compare equal. Used only for fraud checks: the address a participant gave is kept as given.
/// </summary>
public static class EmailIdentity
{
    /// <summary>
    /// Lower-cases, drops a plus-tag (<c>a+x@</c>) at every provider, and for Gmail drops dots in the local part
    /// and maps <c>googlemail.com</c> to <c>gmail.com</c>. Plus-tags are dropped everywhere because nearly all large
    /// providers deliver them to the untagged mailbox; a false match costs a review, a miss costs a reward.
    /// </summary>
    public static string Normalise(string email)
    {
        var address = email.Trim().ToLowerInvariant();
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1)
        {
            return address;
        }
        var local = address[..at];
        var domain = address[(at + 1)..].TrimEnd('.');
        var plus = local.IndexOf('+');
        if (plus > 0)
        {
            local = local[..plus];
        }
        if (domain is "gmail.com" or "googlemail.com")
        {
            local = local.Replace(".", "", StringComparison.Ordinal);
            domain = "gmail.com";
        }
        return $"{local}@{domain}";
    }

    /// <summary>The lower-cased domain part, without a trailing dot; empty when there is none.</summary>
    public static string Domain(string email)
    {
        var address = email.Trim();
        var at = address.LastIndexOf('@');
        return at < 0 ? "" : address[(at + 1)..].TrimEnd('.').ToLowerInvariant();
    }

    /// <summary>True when <paramref name="domain"/> is <paramref name="parent"/> or one of its subdomains.</summary>
    public static bool IsWithin(string domain, string parent) =>
        domain.Equals(parent, StringComparison.Ordinal)
        || (domain.Length > parent.Length + 1
            && domain.EndsWith(parent, StringComparison.Ordinal)
            && domain[domain.Length - parent.Length - 1] == '.');
}
