using System.Diagnostics;

namespace Referloop.Http;

/// <summary>
/// What a request's trace records of its path: the paths that carry a secret (an advocate's portal token, an
/// unsubscribe token, an inbound hook's token) with the secret replaced by <c>{token}</c>. Whoever reads the traces
/// could otherwise open any advocate's portal or post to any hook.
/// </summary>
public static class TracedPaths
{
    private static readonly string[] WithToken = ["/p/", "/unsubscribe/", "/hooks/"];

    public static string Redact(string path)
    {
        foreach (var prefix in WithToken)
        {
            if (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                var slash = path.IndexOf('/', prefix.Length);
                return path[..prefix.Length] + "{token}" + (slash < 0 ? "" : path[slash..]);
            }
        }
        return path;
    }

    /// <summary>Sets the trace's <c>url.path</c> (OpenTelemetry's ASP.NET Core instrumentation sets it as received).</summary>
    public static void Enrich(Activity activity, HttpRequest request)
    {
        if (request.Path.Value is { } path && Redact(path) is var redacted && !ReferenceEquals(redacted, path))
        {
            activity.SetTag("url.path", redacted);
        }
    }
}
