namespace Referloop.Http;

/// <summary>Collects "field → rule it broke" pairs; the field is the camelCase JSON path the client sent.</summary>
public sealed class ValidationErrors
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool IsEmpty => _errors.Count == 0;

    public void Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var list))
        {
            _errors[field] = list = [];
        }
        list.Add(message);
    }

    public void Required(string field, string? value, int maxLength = 200)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            Add(field, "is required.");
        }
        else if (value.Length > maxLength)
        {
            Add(field, $"must be at most {maxLength} characters.");
        }
    }

    public void MaxLength(string field, string? value, int maxLength)
    {
        if (value is not null && value.Length > maxLength)
        {
            Add(field, $"must be at most {maxLength} characters.");
        }
    }

    /// <summary>A text kept or looked up as text must not hold a NUL character: PostgreSQL's text refuses it.</summary>
    public void NoNul(string field, string? value)
    {
        if (value?.Contains('\0') == true)
        {
            Add(field, NulGuard.JsonRule);
        }
    }

    public void Range(string field, int? value, int min, int max)
    {
        if (value is { } v && (v < min || v > max))
        {
            Add(field, $"must be between {min} and {max}.");
        }
    }

    public void OneOf(string field, string? value, params string[] allowed)
    {
        if (value is null)
        {
            Add(field, $"is required; one of: {string.Join(", ", allowed)}.");
        }
        else if (!allowed.Contains(value, StringComparer.Ordinal))
        {
            Add(field, $"must be one of: {string.Join(", ", allowed)} (got '{value}').");
        }
    }

    public void HttpUrl(string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            Add(field, "is required.");
        }
        else if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            Add(field, "must be an absolute http or https URL.");
        }
        else if (value.Length > 2048)
        {
            Add(field, "must be at most 2048 characters.");
        }
    }

    public Dictionary<string, string[]> ToDictionary() =>
        _errors.ToDictionary(pair => pair.Key, pair => pair.Value.ToArray(), StringComparer.Ordinal);
}

/// <summary>A request body that can say what is wrong with it.</summary>
public interface IValidatable
{
    void Validate(ValidationErrors errors);
}
