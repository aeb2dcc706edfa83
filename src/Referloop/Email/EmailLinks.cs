using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Referloop.Http;

namespace Referloop.Email;

/// <summary>
/// Unsubscribe links: <c>/unsubscribe/{token}</c>, the token the participant's id protected with the server's data
/// protection keys (kept in the database, shared by every instance). Nothing is stored per link, and a link keeps
/// working after the key that made it is rotated out.
/// </summary>
public sealed class EmailLinks(IDataProtectionProvider protection, PublicUrls urls)
{
    private readonly IDataProtector _protector = protection.CreateProtector("Referloop.Email.Unsubscribe.v1");

    public string UnsubscribeUrl(string participantId) => $"{urls.Base}/unsubscribe/{_protector.Protect(participantId)}";

    /// <summary>The participant id of a token, or null when it was not made here or was altered.</summary>
    public string? ParticipantOf(string token)
    {
        if (token.Length is < 20 or > 500)
        {
            return null;
        }
        try
        {
            return _protector.Unprotect(token);
        }
        catch (CryptographicException)
        {
            return null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
