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

    public CultureInfo Culture { get; } = CultureInfo.GetCultureInfo(language);

    public string this[string name] => Resources.GetString(name, Culture)
        ?? throw new InvalidOperationException($"PageText.resx has no text '{name}'.");

    public string Format(string name, params object?[] values) => string.Format(Culture, this[name], values);

    /// <summary>Every text name of the English resource, for the tests that check each translation is complete.</summary>
    public static IReadOnlyList<string> Names() =>
        Resources.GetResourceSet(CultureInfo.InvariantCulture, createIfNotExists: true, tryParents: false)!
            .Cast<System.Collections.DictionaryEntry>().Select(e => (string)e.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>The names a translation holds itself (without falling back to English).</summary>
    public static IReadOnlyList<string> NamesIn(string language) =>
        Resources.GetResourceSet(CultureInfo.GetCultureInfo(language), createIfNotExists: true, tryParents: false)?
            .Cast<System.Collections.DictionaryEntry>().Select(e => (string)e.Key).Order(StringComparer.Ordinal).ToList() ?? [];
}
