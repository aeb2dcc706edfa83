using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Referloop.Webhooks;

namespace Referloop.InboundHooks;

/// <summary>Verifies a Standard Webhooks signature on an inbound request, for hooks that have a signing secret.</summary>
public static class HookSignature
{
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);

    /// <summary>Null when the request is signed correctly and recently; otherwise what is wrong with it.</summary>
    public static string? Problem(string secret, IHeaderDictionary headers, string body, DateTimeOffset now)
    {
        string? id = headers["webhook-id"];
        string? timestamp = headers["webhook-timestamp"];
        string? signatures = headers["webhook-signature"];
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signatures))
        {
            return "This hook requires a Standard Webhooks signature: send the webhook-id, webhook-timestamp and webhook-signature headers.";
        }
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return "The webhook-timestamp header must be whole seconds since 1970.";
        }
        if (Math.Abs(now.ToUnixTimeSeconds() - seconds) > Tolerance.TotalSeconds)
        {
            return "The webhook-timestamp is more than 5 minutes away from the server's time; the request may be a replay.";
        }
        var expected = Encoding.ASCII.GetBytes(WebhookSignature.Sign(secret, id, seconds, body));
        foreach (var signature in signatures.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(signature), expected))
            {
                return null;
            }
        }
        return "The webhook-signature does not match: sign \"{webhook-id}.{webhook-timestamp}.{body}\" with the hook's whsec_ secret.";
    }
}
