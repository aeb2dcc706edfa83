namespace Referloop.Tests.Support;

/// <summary>
/// A server whose outbound calls may reach loopback and private networks, for tests whose receivers listen on
/// 127.0.0.1. The plain <see cref="ReferloopApp"/> keeps the production default: they may not.
/// </summary>
public class PrivateNetworkApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            return settings;
        }
    }
}
