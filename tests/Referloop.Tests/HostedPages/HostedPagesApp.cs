using Referloop.Tests.Support;

namespace Referloop.Tests.HostedPages;

/// <summary>A server whose hosted forms allow 5 posts a minute per address, so the limit can be reached in a test.</summary>
public sealed class HostedPagesApp : ReferloopApp
{
    public const int FormsPerMinute = 5;

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["RateLimits:HostedFormsPerIpPerMinute"] = FormsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return settings;
        }
    }
}
