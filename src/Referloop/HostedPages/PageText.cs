using System.Globalization;
using System.Resources;

namespace Referloop.HostedPages;

/// <summary>
/// The hosted pages' texts in one language, from <c>PageText.resx</c> (English, complete) and its translations
/// (<c>PageText.de.resx</c>). A text missing from a translation falls back to English.
/// </summary>
public sealed class PageText(string language)
{
    private static readonly ResourceManager Resources = new("Referloop.HostedPages.PageText", typeof(PageText).Assembly);

    public string Language { get; } = language;

    /// <summary>How the pages of this language write numbers, money and dates (<see cref="PageCulture"/>).</summary>
    public CultureInfo Culture { get; } = PageCulture.For(language);

    public string this[string name] => Resources.GetString(name, Culture)
        ?? throw new InvalidOperationException($"PageText.resx has no text '{name}'.");

    public string Format(string name, params object?[] values) => string.Format(Culture, this[name], values);

    /// <summary>An amount in a currency as this language writes it: <c>$10.50</c>, <c>10,50 €</c>.</summary>
    public string Money(decimal amount, string? currency) => PageCulture.Money(amount, currency, Culture);

    /// <summary>A count as this language writes it: <c>1,000</c>, <c>1.000</c>.</summary>
    public string Number(long value) => PageCulture.Number(value, Culture);

    /// <summary>A day as this language writes it: <c>12/4/2026</c>, <c>04.12.2026</c>.</summary>
    public string Date(DateTimeOffset at) => PageCulture.Date(at, Culture);

    /// <summary>Every text name of the English resource, for the tests that check each translation is complete.</summary>
    public static IReadOnlyList<string> Names() =>
        Resources.GetResourceSet(CultureInfo.InvariantCulture, createIfNotExists: true, tryParents: false)!
            .Cast<System.Collections.DictionaryEntry>().Select(e => (string)e.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>The names a translation holds itself (without falling back to English).</summary>
    public static IReadOnlyList<string> NamesIn(string language) =>
        Resources.GetResourceSet(CultureInfo.GetCultureInfo(language), createIfNotExists: true, tryParents: false)?
            .Cast<System.Collections.DictionaryEntry>().Select(e => (string)e.Key).Order(StringComparer.Ordinal).ToList() ?? [];
}
