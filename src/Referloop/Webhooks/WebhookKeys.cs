using System.Text;
using Microsoft.AspNetCore.DataProtection;
using NSec.Cryptography;

namespace Referloop.Webhooks;

/// <summary>How an endpoint's messages are signed (Standard Webhooks): <c>v1</c> HMAC or <c>v1a</c> Ed25519.</summary>
public static class WebhookSigning
{
    /// <summary><c>v1,…</c> with a shared <c>whsec_</c> secret.</summary>
    public const string Hmac = "hmac";

    /// <summary><c>v1a,…</c> with a key pair: the receiver holds only the public key (<c>whpk_…</c>) and cannot sign.</summary>
    public const string Ed25519 = "ed25519";

    public static readonly string[] All = [Hmac, Ed25519];
}

/// <summary>
/// Ed25519 key pairs of endpoints that sign with <c>v1a</c>. The private key is stored encrypted with ASP.NET Core
/// Data Protection (its key ring is in the database, so every instance can sign); the public key is
/// <c>whpk_</c> + base64 of its raw 32 bytes.
/// </summary>
public sealed class WebhookKeys(IDataProtectionProvider dataProtection)
{
    public const string PublicKeyPrefix = "whpk_";

    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;

    private readonly IDataProtector _protector = dataProtection.CreateProtector("Referloop.Webhooks.Ed25519PrivateKey");

    /// <summary>A new pair: the public key as sent to receivers, the private key as stored (protected).</summary>
    public (string PublicKey, string ProtectedPrivateKey) NewPair()
    {
        using var key = Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        var privateKey = key.Export(KeyBlobFormat.RawPrivateKey);
        try
        {
            return (PublicKeyPrefix + Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)),
                Convert.ToBase64String(_protector.Protect(privateKey)));
        }
        finally
        {
            Array.Clear(privateKey);
        }
    }

    /// <summary>One <c>v1a,…</c> signature of <c>{id}.{timestamp}.{body}</c>.</summary>
    public string Sign(string protectedPrivateKey, string messageId, long timestamp, string body)
    {
        var privateKey = _protector.Unprotect(Convert.FromBase64String(protectedPrivateKey));
        try
        {
            using var key = Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey);
            var content = Encoding.UTF8.GetBytes($"{messageId}.{timestamp}.{body}");
            return "v1a," + Convert.ToBase64String(Algorithm.Sign(key, content));
        }
        finally
        {
            Array.Clear(privateKey);
        }
    }

    /// <summary>The <c>webhook-signature</c> header value: one signature per key, space-separated (rotation).</summary>
    public string Header(IEnumerable<string> protectedPrivateKeys, string messageId, long timestamp, string body) =>
        string.Join(' ', protectedPrivateKeys.Select(key => Sign(key, messageId, timestamp, body)));

    /// <summary>Checks a <c>v1a</c> signature against a <c>whpk_</c> key, the way a receiver does.</summary>
    public static bool Verify(string publicKey, string messageId, long timestamp, string body, string signature)
    {
        if (!publicKey.StartsWith(PublicKeyPrefix, StringComparison.Ordinal) || !signature.StartsWith("v1a,", StringComparison.Ordinal))
        {
            return false;
        }
        var key = PublicKey.Import(Algorithm, Convert.FromBase64String(publicKey[PublicKeyPrefix.Length..]), KeyBlobFormat.RawPublicKey);
        return Algorithm.Verify(key, Encoding.UTF8.GetBytes($"{messageId}.{timestamp}.{body}"),
            Convert.FromBase64String(signature["v1a,".Length..]));
    }
}
