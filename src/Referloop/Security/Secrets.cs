using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Referloop.Security;

public static class Secrets
{
    /// <summary>A prefixed, URL-safe token with 256 bits of randomness.</summary>
    public static string NewToken(string prefix) => $"{prefix}_{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32))}";

    /// <summary>
    /// SHA-256 is enough for tokens with 256 random bits: there is nothing to brute-force, so a slow password
    /// hash would only slow every request.
    /// </summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private const string CodeAlphabet = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

    /// <summary>A share code: 8 characters without look-alikes (0/O, 1/l/I), about 46 bits, URL-safe.</summary>
    public static string NewCode() => RandomNumberGenerator.GetString(CodeAlphabet, 8);
}
