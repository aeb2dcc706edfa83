using System.ComponentModel.DataAnnotations;
using Referloop.Http;

namespace Referloop.SocialProof;

/// <summary>A campaign's social-proof settings (<c>socialProof</c> in the campaign API).</summary>
public sealed record SocialProofSettings
{
    public const int MaxOrigins = 50;

    /// <summary>
    /// Origins whose pages may read this campaign's feed from the browser (<c>https://shop.example.com</c>, or <c>*</c>
    /// for any). Empty: the server's <c>SocialProof:AllowedOrigins</c> apply.
    /// </summary>
    [MaxLength(MaxOrigins)]
    public List<string> AllowedOrigins { get; init; } = [];

    public void Validate(ValidationErrors errors, string path)
    {
        if (AllowedOrigins is null)
        {
            errors.Add($"{path}.allowedOrigins", "must be an array of origins.");
            return;
        }
        if (AllowedOrigins.Count > MaxOrigins)
        {
            errors.Add($"{path}.allowedOrigins", $"must hold at most {MaxOrigins} origins.");
        }
        for (var i = 0; i < AllowedOrigins.Count; i++)
        {
            if (!IsOrigin(AllowedOrigins[i]))
            {
                errors.Add($"{path}.allowedOrigins[{i}]", "must be an origin such as https://shop.example.com (scheme, host and port only) or '*'.");
            }
        }
    }

    /// <summary>The origins as browsers send them: no trailing slash, lower case.</summary>
    public static List<string> Normalise(IEnumerable<string> origins) =>
        origins.Select(o => o.Trim().TrimEnd('/').ToLowerInvariant()).Where(o => o.Length > 0).Distinct().ToList();

    private static bool IsOrigin(string? value)
    {
        if (value is null)
        {
            return false;
        }
        value = value.Trim().TrimEnd('/');
        if (value == "*")
        {
            return true;
        }
        return value.Length <= 2048
            && Uri.TryCreate(value, UriKind.Absolute, out var uri)
            && uri.Scheme is "http" or "https"
            && uri.AbsolutePath == "/" && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0
            && !value.EndsWith('?') && !value.EndsWith('#');
    }
}
