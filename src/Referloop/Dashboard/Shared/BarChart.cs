namespace Referloop.Dashboard.Shared;

/// <summary>One bar: its label, its length and the text shown at its end.</summary>
public sealed record Bar(string Label, double Value, string Display);

/// <summary>A horizontal bar chart rendered as SVG on the server, with a title, a description and a data table.</summary>
public sealed record BarChart(string Id, string Title, string Description, string ValueHeading, IReadOnlyList<Bar> Bars)
{
    public const int Width = 560;
    public const int LabelWidth = 150;
    public const int RowHeight = 36;
    public const int BarHeight = 22;

    public int Height => Math.Max(1, Bars.Count) * RowHeight + 8;

    public double Max => Bars.Count == 0 ? 0 : Bars.Max(b => b.Value);

    /// <summary>The bar's length in SVG units; a non-zero value stays visible.</summary>
    public double Length(Bar bar)
    {
        const double room = Width - LabelWidth - 70;
        if (Max <= 0 || bar.Value <= 0)
        {
            return 0;
        }
        return Math.Max(2, room * bar.Value / Max);
    }
}
