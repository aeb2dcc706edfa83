namespace Referloop.SocialProof;

public sealed record SocialProofProductView(string Name, string? Link, string? Image);

/// <summary>
/// The public face of a social-proof item: first name, last initial, city, US state (or the region sent), country and
/// product, never the email, IP address or last name. Links are http(s) only.
/// </summary>
public sealed record SocialProofEntry(
    string Id,
    string Kind,
    string? FirstName,
    string? LastInitial,
    string? City,
    string? State,
    string? StateCode,
    string? Country,
    string? CountryCode,
    SocialProofProductView? Product,
    DateTimeOffset OccurredAt,
    string RelativeTime)
{
    public static SocialProofEntry From(SocialProofItem item, DateTimeOffset now) => new(
        item.Id,
        item.ProductName is not null || item.Total is not null || item.Products.Count > 0 ? "purchase" : "signup",
        item.FirstName,
        Names.Initial(item.LastName),
        item.City,
        item.State,
        item.StateCode,
        item.Country,
        item.CountryCode,
        item.ProductName is null ? null : new SocialProofProductView(item.ProductName,
            StreamPayload.IsHttpUrl(item.ProductLink) ? item.ProductLink : null,
            StreamPayload.IsHttpUrl(item.ProductImage) ? item.ProductImage : null),
        item.OccurredAt,
        TimeAgo.Describe(item.OccurredAt, now));
}

public static class TimeAgo
{
    /// <summary>"just now", "3 minutes ago", "1 hour ago", "2 days ago"… in English.</summary>
    public static string Describe(DateTimeOffset at, DateTimeOffset now)
    {
        var elapsed = now - at;
        if (elapsed < TimeSpan.FromMinutes(1))
        {
            return "just now";
        }
        return elapsed switch
        {
            _ when elapsed < TimeSpan.FromHours(1) => Ago((int)elapsed.TotalMinutes, "minute"),
            _ when elapsed < TimeSpan.FromDays(1) => Ago((int)elapsed.TotalHours, "hour"),
            _ when elapsed < TimeSpan.FromDays(7) => Ago((int)elapsed.TotalDays, "day"),
            _ when elapsed < TimeSpan.FromDays(30) => Ago((int)(elapsed.TotalDays / 7), "week"),
            _ when elapsed < TimeSpan.FromDays(365) => Ago((int)(elapsed.TotalDays / 30), "month"),
            _ => Ago((int)(elapsed.TotalDays / 365), "year"),
        };
    }

    private static string Ago(int count, string unit) => count == 1 ? $"1 {unit} ago" : $"{count} {unit}s ago";
}
