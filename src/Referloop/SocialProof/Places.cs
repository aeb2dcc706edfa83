namespace Referloop.SocialProof;

/// <summary>Fills country from country code and back, and US state from state code and back.</summary>
public static partial class Places
{
    private static readonly (string Code, string Name)[] ExtraAliases =
    [
        ("US", "USA"), ("US", "U.S.A."), ("US", "U.S."), ("US", "America"), ("GB", "UK"), ("GB", "U.K."),
        ("GB", "Great Britain"), ("GB", "England"), ("GB", "Scotland"), ("GB", "Wales"), ("RU", "Russia"),
        ("KR", "Korea"), ("CZ", "Czech Republic"), ("NL", "Holland"), ("AE", "UAE"),
    ];

    private static readonly Dictionary<string, string> CountryNames =
        CountryTable.ToDictionary(c => c.Code, c => c.Name, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<string, string> CountryCodes = CountryTable.Concat(CountryAliases).Concat(ExtraAliases)
        .DistinctBy(c => c.Name, StringComparer.OrdinalIgnoreCase)
        .ToDictionary(c => c.Name, c => c.Code, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<string, string> UsStateNames =
        UsStateTable.ToDictionary(s => s.Code, s => s.Name, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<string, string> UsStateCodes =
        UsStateTable.ToDictionary(s => s.Name, s => s.Code, StringComparer.OrdinalIgnoreCase);

    public static int CountryCount => CountryNames.Count;

    public static string? CountryName(string? code) =>
        code is not null && CountryNames.TryGetValue(code.Trim(), out var name) ? name : null;

    public static string? CountryCode(string? name) =>
        name is not null && CountryCodes.TryGetValue(name.Trim(), out var code) ? code : null;

    public static string? UsStateName(string? code) =>
        code is not null && UsStateNames.TryGetValue(code.Trim(), out var name) ? name : null;

    public static string? UsStateCode(string? name) =>
        name is not null && UsStateCodes.TryGetValue(name.Trim(), out var code) ? code : null;
}
