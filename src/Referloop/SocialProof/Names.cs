using System.Globalization;

namespace Referloop.SocialProof;

/// <summary>First and last name from what is known: a full name, or the local part of an email address.</summary>
public static class Names
{
    /// <summary><c>john.smith+shop@…</c> → John, Smith; <c>jsmith@…</c> → Jsmith, null; <c>12345@…</c> → null, null.</summary>
    public static (string? First, string? Last) FromEmail(string email)
    {
        var local = email.Split('@')[0];
        var plus = local.IndexOf('+');
        if (plus >= 0)
        {
            local = local[..plus];
        }
        var parts = local.Split(['.', '_', '-', '\''], StringSplitOptions.RemoveEmptyEntries)
            .Select(part => new string(part.Where(char.IsLetter).ToArray()))
            .Where(part => part.Length > 0)
            .Select(Capitalise)
            .ToList();
        return parts.Count switch
        {
            0 => (null, null),
            1 => (parts[0], null),
            _ => (parts[0], parts[^1]),
        };
    }

    /// <summary>"Ann Lee" → Ann, Lee; "Cher" → Cher, null.</summary>
    public static (string? First, string? Last) FromFullName(string? name)
    {
        var parts = (name ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length switch
        {
            0 => (null, null),
            1 => (parts[0], null),
            _ => (parts[0], parts[^1]),
        };
    }

    public static string? Initial(string? lastName)
    {
        var letter = lastName?.FirstOrDefault(char.IsLetterOrDigit);
        return letter is null or '\0' ? null : char.ToUpperInvariant(letter.Value) + ".";
    }

    private static string Capitalise(string word) =>
        word.Length == 1 ? word.ToUpperInvariant() : char.ToUpperInvariant(word[0]) + word[1..].ToLower(CultureInfo.InvariantCulture);
}
