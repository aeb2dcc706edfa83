using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;

namespace Referloop.Fraud;

/// <summary>
/// Throwaway-mailbox providers, from the list vendored in <c>disposable-email-domains.txt</c> (see its header for
/// the source package, version and licence; <c>update-disposable-domains.sh</c> refreshes it). Loaded once.
/// </summary>
public static class DisposableDomains
{
    private const string ResourceName = "Referloop.Fraud.disposable-email-domains.txt";

    private static readonly Lazy<FrozenSet<string>> Domains = new(Load);

    public static int Count => Domains.Value.Count;

    /// <summary>
    /// True when the domain or any parent domain is listed: providers hand out endless subdomains
    /// (<c>x7.mailinator.com</c>), so listing the parent must cover them.
    /// </summary>
    public static bool IsDisposable(string domain, [NotNullWhen(true)] out string? listed)
    {
        var candidate = domain.Trim().TrimEnd('.').ToLowerInvariant();
        var set = Domains.Value;
        while (candidate.Length > 0)
        {
            if (set.Contains(candidate))
            {
                listed = candidate;
                return true;
            }
            var dot = candidate.IndexOf('.');
            if (dot < 0)
            {
                break;
            }
            candidate = candidate[(dot + 1)..];
        }
        listed = null;
        return false;
    }

    private static FrozenSet<string> Load()
    {
        using var stream = typeof(DisposableDomains).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource {ResourceName} is missing from the build.");
        using var reader = new StreamReader(stream);
        var domains = new List<string>(capacity: 10_000);
        while (reader.ReadLine() is { } line)
        {
            var domain = line.Trim();
            if (domain.Length > 0 && !domain.StartsWith('#'))
            {
                domains.Add(domain.ToLowerInvariant());
            }
        }
        return domains.ToFrozenSet(StringComparer.Ordinal);
    }
}
