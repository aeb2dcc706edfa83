using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Referloop.Http;

namespace Referloop.SocialProof;

/// <summary>The fields of a <c>stream</c> hook request (seeds/001), read and checked, not yet enriched.</summary>
public sealed record StreamPayload(
    string Email,
    DateTimeOffset? Timestamp,
    IPAddress? Ip,
    string? FirstName,
    string? LastName,
    string? City,
    string? Country,
    string? CountryCode,
    string? State,
    string? StateCode,
    string? Guid,
    string? ProductName,
    string? ProductLink,
    string? ProductImage,
    decimal? Total,
    string? Currency,
    IReadOnlyList<SocialProofProduct> Products,
    IReadOnlyList<string> Warnings)
{
    public const int MaxProducts = 100;

    // Linear-time matching: payload strings are attacker-controlled, and a wall-clock timeout would fail
    // legitimate requests on a busy machine.
    private static readonly Regex EmailPattern = new(@"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
        RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);

    private static readonly Regex CurrencyPattern = new("^[A-Za-z]{3}$", RegexOptions.CultureInvariant);

    /// <summary>Reads the payload; every problem is added to <paramref name="errors"/> under the field's name.</summary>
    public static StreamPayload? Read(JsonObject payload, ValidationErrors errors, DateTimeOffset now)
    {
        var warnings = new List<string>();
        var email = ReadEmail(payload, errors);
        var timestamp = ReadTimestamp(Field(payload, "timestamp"), errors, now);
        var ip = ReadIp(Field(payload, "ip"), errors);
        var firstName = ReadText(payload, "firstName", 100, errors);
        var lastName = ReadText(payload, "lastName", 100, errors);
        var city = ReadText(payload, "city", 100, errors);
        var country = ReadText(payload, "country", 100, errors);
        var countryCode = ReadText(payload, "countryCode", 2, errors)?.ToUpperInvariant();
        if (countryCode is not null && Places.CountryName(countryCode) is null)
        {
            errors.Add("countryCode", $"must be an ISO 3166-1 alpha-2 country code such as US or DE (got '{countryCode}').");
        }
        var state = ReadText(payload, "state", 100, errors);
        var stateCode = ReadText(payload, "stateCode", 8, errors)?.ToUpperInvariant();
        var guid = ReadText(payload, "guid", 200, errors);
        var productName = ReadText(payload, "productName", 200, errors);
        var productLink = ReadLink(payload, "productLink", "productLink", warnings, errors);
        var productImage = ReadLink(payload, "productImage", "productImage", warnings, errors);
        var total = ReadNumber(Field(payload, "total"), "total", errors);
        var currency = ReadText(payload, "currency", 8, errors);
        if (currency is not null && !CurrencyPattern.IsWholeMatch(currency))
        {
            errors.Add("currency", $"must be a three-letter ISO 4217 code such as USD (got '{currency}').");
        }
        var products = ReadProducts(Field(payload, "products"), warnings, errors);

        return errors.IsEmpty && email is not null
            ? new StreamPayload(email, timestamp, ip, firstName, lastName, city, country, countryCode, state, stateCode, guid,
                productName, productLink, productImage, total, currency?.ToUpperInvariant(), products, warnings)
            : null;
    }

    /// <summary>
    /// The product to show: the top-level fields when given, else the most expensive of <c>products[]</c> when any
    /// has a price, else the first.
    /// </summary>
    public (string? Name, string? Link, string? Image) DisplayedProduct()
    {
        if (ProductName is not null)
        {
            return (ProductName, ProductLink, ProductImage);
        }
        if (Products.Count == 0)
        {
            return (null, ProductLink, ProductImage);
        }
        var shown = Products.Any(p => p.Price is not null)
            ? Products.Aggregate((best, p) => (p.Price ?? decimal.MinValue) > (best.Price ?? decimal.MinValue) ? p : best)
            : Products[0];
        return (shown.Name, shown.Link ?? ProductLink, shown.Image ?? ProductImage);
    }

    /// <summary>Finds a property by name, ignoring case (form tools send Email, EMAIL…).</summary>
    private static JsonNode? Field(JsonObject payload, string name)
    {
        if (payload.TryGetPropertyValue(name, out var exact))
        {
            return exact;
        }
        foreach (var (key, value) in payload)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }
        return null;
    }

    private static string? Scalar(JsonNode? node) => node switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonValue value when value.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.ToJsonString(),
        _ => null,
    };

    /// <summary>Trimmed text without control characters; empty is absent.</summary>
    private static string? Clean(string? text)
    {
        if (text is null)
        {
            return null;
        }
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            builder.Append(char.IsControl(c) ? ' ' : c);
        }
        var cleaned = builder.ToString().Trim();
        return cleaned.Length == 0 ? null : cleaned;
    }

    private static string? ReadText(JsonObject payload, string field, int maxLength, ValidationErrors errors) =>
        ReadText(Field(payload, field), field, maxLength, errors);

    private static string? ReadText(JsonNode? node, string field, int maxLength, ValidationErrors errors)
    {
        if (node is null)
        {
            return null;
        }
        if (node is not JsonValue)
        {
            errors.Add(field, "must be text, not an object or array.");
            return null;
        }
        var text = Clean(Scalar(node));
        if (text is not null && text.Length > maxLength)
        {
            errors.Add(field, $"must be at most {maxLength} characters.");
            return null;
        }
        return text;
    }

    private static string? ReadEmail(JsonObject payload, ValidationErrors errors)
    {
        var node = Field(payload, "email");
        if (node is not null)
        {
            var given = node is JsonValue ? Clean(Scalar(node)) : null;
            if (given is null)
            {
                errors.Add("email", "is required as text: the email of the person who converted.");
                return null;
            }
            var match = EmailPattern.Match(given);
            if (!match.Success || match.Length != given.Length)
            {
                errors.Add("email", $"is not an email address (got '{(given.Length > 60 ? given[..60] + "…" : given)}').");
                return null;
            }
            if (given.Length > 254)
            {
                errors.Add("email", $"must be at most 254 characters (got {given.Length}).");
                return null;
            }
            return given.ToLowerInvariant();
        }
        var found = Search(payload, depth: 0);
        if (found is null)
        {
            errors.Add("email", "is required: the email of the person who converted; none was found anywhere in the payload.");
        }
        return found?.ToLowerInvariant();
    }

    /// <summary>The first email address in any string of the payload, depth first, in document order.</summary>
    private static string? Search(JsonNode? node, int depth)
    {
        if (depth > 16)
        {
            return null;
        }
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, value) in obj)
                {
                    if (Search(value, depth + 1) is { } found)
                    {
                        return found;
                    }
                }
                return null;
            case JsonArray array:
                foreach (var value in array)
                {
                    if (Search(value, depth + 1) is { } found)
                    {
                        return found;
                    }
                }
                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                var text = value.GetValue<string>();
                if (text.Length > 2000)
                {
                    return null;
                }
                var match = EmailPattern.Match(text);
                return match.Success && match.Length <= 254 ? match.Value : null;
            default:
                return null;
        }
    }

    private static DateTimeOffset? ReadTimestamp(JsonNode? node, ValidationErrors errors, DateTimeOffset now)
    {
        var text = Clean(Scalar(node));
        if (text is null)
        {
            if (node is not null and not JsonValue)
            {
                errors.Add("timestamp", "must be a number (seconds or milliseconds since 1970) or an ISO-8601 date.");
            }
            return null;
        }
        DateTimeOffset? at = null;
        if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            // Seconds since 1970 stay below 1e11 until the year 5138; milliseconds pass it in 1973.
            var milliseconds = Math.Abs(number) >= 100_000_000_000m ? number : number * 1000m;
            if (milliseconds is > -62_135_596_800_000m and < 253_402_300_799_000m)
            {
                at = DateTimeOffset.FromUnixTimeMilliseconds((long)milliseconds);
            }
        }
        else if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            at = parsed.ToUniversalTime();
        }
        if (at is null || at.Value.Year < 2000 || at.Value > now.AddDays(1))
        {
            errors.Add("timestamp", $"must be a time since 2000 and not in the future, in seconds or milliseconds since 1970 or ISO-8601 (got '{text}').");
            return null;
        }
        return at.Value > now ? now : at.Value;
    }

    private static IPAddress? ReadIp(JsonNode? node, ValidationErrors errors)
    {
        var text = Clean(Scalar(node));
        if (text is null)
        {
            return null;
        }
        if (text.Length > 64 || !IPAddress.TryParse(text, out var ip))
        {
            errors.Add("ip", $"must be an IPv4 or IPv6 address (got '{(text.Length > 64 ? text[..64] + "…" : text)}').");
            return null;
        }
        return ip;
    }

    private static decimal? ReadNumber(JsonNode? node, string field, ValidationErrors errors)
    {
        var text = Clean(Scalar(node));
        if (text is null)
        {
            if (node is not null and not JsonValue)
            {
                errors.Add(field, "must be a number.");
            }
            return null;
        }
        if (!decimal.TryParse(text, NumberStyles.Number, CultureInfo.InvariantCulture, out var number) || number < 0)
        {
            errors.Add(field, $"must be a number of zero or more (got '{(text.Length > 40 ? text[..40] + "…" : text)}').");
            return null;
        }
        return number;
    }

    /// <summary>An absolute http(s) URL, or null. Anything else (javascript:, data:, relative) is dropped with a warning.</summary>
    private static string? ReadLink(JsonObject payload, string field, string path, List<string> warnings, ValidationErrors errors) =>
        SafeLink(ReadText(Field(payload, field), path, 2048, errors), path, warnings);

    private static string? SafeLink(string? text, string path, List<string> warnings)
    {
        if (text is null)
        {
            return null;
        }
        if (IsHttpUrl(text))
        {
            return text;
        }
        warnings.Add($"{path} was dropped: only absolute http or https links are shown.");
        return null;
    }

    public static bool IsHttpUrl(string? text) =>
        text is not null && Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && !string.IsNullOrEmpty(uri.Host);

    private static List<SocialProofProduct> ReadProducts(JsonNode? node, List<string> warnings, ValidationErrors errors)
    {
        var products = new List<SocialProofProduct>();
        if (node is null)
        {
            return products;
        }
        if (node is not JsonArray array)
        {
            errors.Add("products", "must be an array of products, each with a name and a link.");
            return products;
        }
        if (array.Count > MaxProducts)
        {
            errors.Add("products", $"must hold at most {MaxProducts} products.");
            return products;
        }
        for (var i = 0; i < array.Count; i++)
        {
            var path = $"products[{i}]";
            if (array[i] is null)
            {
                continue; // a gap left by form keys such as products[2][…] without products[1]
            }
            if (array[i] is not JsonObject product)
            {
                errors.Add(path, "must be an object with a name and a link.");
                continue;
            }
            var name = ReadText(Field(product, "name"), $"{path}.name", 200, errors);
            var link = ReadText(Field(product, "link"), $"{path}.link", 2048, errors);
            if (name is null)
            {
                errors.Add($"{path}.name", "is required.");
            }
            if (link is null)
            {
                errors.Add($"{path}.link", "is required.");
            }
            var id = ReadText(Field(product, "id"), $"{path}.id", 200, errors);
            var image = SafeLink(ReadText(Field(product, "image"), $"{path}.image", 2048, errors), $"{path}.image", warnings);
            var price = ReadNumber(Field(product, "price"), $"{path}.price", errors);
            var quantityNumber = ReadNumber(Field(product, "quantity"), $"{path}.quantity", errors);
            int? quantity = null;
            if (quantityNumber is { } q)
            {
                if (q != decimal.Truncate(q) || q > 1_000_000)
                {
                    errors.Add($"{path}.quantity", "must be a whole number up to 1000000.");
                }
                else
                {
                    quantity = (int)q;
                }
            }
            if (name is not null && link is not null)
            {
                products.Add(new SocialProofProduct(name, SafeLink(link, $"{path}.link", warnings), id, image, price, quantity));
            }
        }
        return products;
    }
}
