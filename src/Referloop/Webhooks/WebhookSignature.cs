using System.Security.Cryptography;
using System.Text;

namespace Referloop.Webhooks;

/// <summary>
/// Standard Webhooks signing: <c>v1,base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))</c> with secrets
/// written <c>whsec_&lt;base64&gt;</c>. Used for outbound webhooks and for calls to a merchant's create-coupon URL.
/// </summary>
public static class WebhookSignature
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static bool IsValidSecret(string? secret)
    {
        if (secret is null || !secret.StartsWith(SecretPrefix, StringComparison.Ordinal))
        {
            return false;
        }
        Span<byte> buffer = stackalloc byte[128];
        return Convert.TryFromBase64String(secret[SecretPrefix.Length..], buffer, out var written) && written >= 16;
    }

    /// <summary>One <c>v1,…</c> signature of the message with the given secret.</summary>
    public static string Sign(string secret, string messageId, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        var content = Encoding.UTF8.GetBytes($"{messageId}.{timestamp}.{body}");
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, content));
    }

    /// <summary>The <c>webhook-signature</c> header value: one signature per secret, space-separated (rotation).</summary>
    public static string Header(IEnumerable<string> secrets, string messageId, long timestamp, string body) =>
        string.Join(' ', secrets.Select(secret => Sign(secret, messageId, timestamp, body)));

    /// <summary>Adds <c>webhook-id</c>, <c>webhook-timestamp</c> and <c>webhook-signature</c> to a request.</summary>
    public static void Apply(HttpRequestMessage request, IEnumerable<string> secrets, string messageId, DateTimeOffset now, string body)
    {
        var timestamp = now.ToUnixTimeSeconds();
        Apply(request, messageId, timestamp, Header(secrets, messageId, timestamp, body));
    }

    /// <summary>The same headers with a signature made elsewhere (e.g. <c>v1a</c> by <see cref="WebhookKeys"/>).</summary>
    public static void Apply(HttpRequestMessage request, string messageId, long timestamp, string signatureHeader)
    {
        request.Headers.TryAddWithoutValidation("webhook-id", messageId);
        request.Headers.TryAddWithoutValidation("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("webhook-signature", signatureHeader);
    }
}
