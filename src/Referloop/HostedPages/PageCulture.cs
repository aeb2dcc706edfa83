using System.Globalization;

namespace Referloop.HostedPages;

/// <summary>
/// The number, money and date conventions of each page language: English as in the United States (<c>$10.50</c>,
/// <c>1,000</c>, <c>12/4/2026</c>), German as in Germany (<c>10,50 €</c>, <c>1.000</c>, <c>04.12.2026</c>), the way
/// .NET's <c>en-US</c> and <c>de-DE</c> cultures write them.
/// </summary>
/// <remarks>
/// The conventions are written out here rather than read from the operating system: the server runs with invariant
/// globalization (no ICU data, every culture formats like the invariant one), and a page must not change with the
/// machine's own culture.
/// </remarks>
public static class PageCulture
{
    private static readonly Dictionary<string, CultureInfo> Cultures = PageLanguage.All.ToDictionary(l => l, Build);

    /// <summary>Symbols both languages write instead of the code; any other currency is written by its code.</summary>
    private static readonly Dictionary<string, string> Symbols = new(StringComparer.Ordinal)
    {
        ["USD"] = "$",
        ["EUR"] = "€",
        ["GBP"] = "£",
        ["JPY"] = "¥",
    };

    /// <summary>Currencies without a minor unit and those of a thousandth (ISO 4217); the rest have cents.</summary>
    private static readonly string[] NoMinorUnit =
        ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"];

    private static readonly string[] ThousandthMinorUnit = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

    /// <summary>The read-only culture of a page language (<see cref="PageLanguage.All"/>); English for any other.</summary>
    public static CultureInfo For(string language) =>
        Cultures.TryGetValue(language, out var culture) ? culture : Cultures[PageLanguage.English];

    /// <summary>
    /// An amount in a currency: <c>$10.50</c> / <c>10,50 $</c>, <c>€10.50</c> / <c>10,50 €</c>, <c>CHF 10.50</c> /
    /// <c>10,50 CHF</c>. As many decimals as the currency's minor unit has, more when the amount has them.
    /// </summary>
    public static string Money(decimal amount, string? currency, CultureInfo culture)
    {
        var code = currency?.Trim().ToUpperInvariant() ?? "";
        var format = (NumberFormatInfo)culture.NumberFormat.Clone();
        format.CurrencySymbol = Symbols.GetValueOrDefault(code, code);
        if (format.CurrencyPositivePattern == 0 && !Symbols.ContainsKey(code))
        {
            // A code before the amount takes a space: "CHF 10.50", as en-US writes currencies without a symbol.
            (format.CurrencyPositivePattern, format.CurrencyNegativePattern) = (2, 9);
        }
        var significant = (amount / 1.000000000000000000000000000000000m).Scale;
        var minor = NoMinorUnit.Contains(code) ? 0 : ThousandthMinorUnit.Contains(code) ? 3 : 2;
        var digits = Math.Max(minor, significant).ToString(CultureInfo.InvariantCulture);
        return amount.ToString((code.Length == 0 ? "N" : "C") + digits, format);
    }

    /// <summary>A whole number with the language's thousands separator: <c>1,000</c> / <c>1.000</c>.</summary>
    public static string Number(long value, CultureInfo culture) => value.ToString("N0", culture);

    /// <summary>The day of <paramref name="at"/> in UTC (the pages do not know the visitor's time zone).</summary>
    public static string Date(DateTimeOffset at, CultureInfo culture) => at.UtcDateTime.ToString("d", culture);

    private static CultureInfo Build(string language)
    {
        var culture = new CultureInfo(language, useUserOverride: false);
        var numbers = culture.NumberFormat;
        var dates = culture.DateTimeFormat;
        numbers.NegativeSign = "-";
        numbers.PercentSymbol = "%";
        numbers.NumberDecimalDigits = numbers.CurrencyDecimalDigits = numbers.PercentDecimalDigits = 2;
        numbers.NumberGroupSizes = numbers.CurrencyGroupSizes = numbers.PercentGroupSizes = [3];
        numbers.NumberNegativePattern = 1; // -n
        if (language == PageLanguage.German)
        {
            numbers.NumberDecimalSeparator = numbers.CurrencyDecimalSeparator = numbers.PercentDecimalSeparator = ",";
            numbers.NumberGroupSeparator = numbers.CurrencyGroupSeparator = numbers.PercentGroupSeparator = ".";
            numbers.CurrencyPositivePattern = 3; // n $
            numbers.CurrencyNegativePattern = 8; // -n $
            numbers.PercentPositivePattern = 0; // n %
            numbers.PercentNegativePattern = 0; // -n %
            dates.DateSeparator = ".";
            dates.ShortDatePattern = "dd.MM.yyyy";
            dates.TimeSeparator = ":";
            dates.ShortTimePattern = "HH:mm";
            dates.LongTimePattern = "HH:mm:ss";
        }
        else
        {
            numbers.NumberDecimalSeparator = numbers.CurrencyDecimalSeparator = numbers.PercentDecimalSeparator = ".";
            numbers.NumberGroupSeparator = numbers.CurrencyGroupSeparator = numbers.PercentGroupSeparator = ",";
            numbers.CurrencyPositivePattern = 0; // $n
            numbers.CurrencyNegativePattern = 1; // -$n
            numbers.PercentPositivePattern = 1; // n%
            numbers.PercentNegativePattern = 1; // -n%
            dates.DateSeparator = "/";
            dates.ShortDatePattern = "M/d/yyyy";
            dates.TimeSeparator = ":";
            dates.ShortTimePattern = "h:mm tt";
            dates.LongTimePattern = "h:mm:ss tt";
            dates.AMDesignator = "AM";
            dates.PMDesignator = "PM";
        }
        return CultureInfo.ReadOnly(culture);
    }
}
