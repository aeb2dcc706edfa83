using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Referloop.Hosting;

/// <summary>
/// The readiness report as JSON: the overall status and each check's, with its description, so an operator reads
/// why an instance is degraded (e.g. no GeoIP database) in the same answer a load balancer reads the status code of.
/// Degraded still answers 200: an instance without IP location serves everything else and stays in rotation.
/// </summary>
internal static class HealthReports
{
    public static Task WriteAsync(HttpContext http, HealthReport report)
    {
        var checks = report.Entries.ToDictionary(entry => entry.Key,
            entry => new CheckReport(entry.Value.Status.ToString(), entry.Value.Description));
        return http.Response.WriteAsJsonAsync(new Report(report.Status.ToString(), checks));
    }

    private sealed record Report(string Status, Dictionary<string, CheckReport> Checks);

    private sealed record CheckReport(string Status, string? Description);
}

/// <summary>
/// <c>dotnet Referloop.dll --health-check [url]</c> asks a running instance for its readiness and exits 0 when it
/// answers 2xx, else 1. The container's <c>HEALTHCHECK</c> runs it: the ASP.NET runtime image has neither curl nor
/// wget. Without a URL it asks <c>/health/ready</c> on the first port of <c>ASPNETCORE_HTTP_PORTS</c>, else of
/// <c>ASPNETCORE_URLS</c>, on localhost.
/// </summary>
internal static class HealthCheckCommand
{
    public const string Argument = "--health-check";

    public static async Task<int> RunAsync(string[] args)
    {
        var url = args.Length > 1 ? args[1] : DefaultUrl();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync(url);
            Console.WriteLine($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException)
        {
            Console.Error.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }

    private static string DefaultUrl()
    {
        if (Environment.GetEnvironmentVariable("ASPNETCORE_HTTP_PORTS")?.Split([';', ','], StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault() is { } port)
        {
            return $"http://localhost:{port.Trim()}/health/ready";
        }
        if (Environment.GetEnvironmentVariable("ASPNETCORE_URLS")?.Split(';').FirstOrDefault() is { Length: > 0 } listen)
        {
            // http://+:8080, http://*:8080 and http://0.0.0.0:8080 are where to listen, not addresses to connect to.
            foreach (var any in new[] { "://+:", "://*:", "://0.0.0.0:", "://[::]:" })
            {
                listen = listen.Replace(any, "://localhost:", StringComparison.Ordinal);
            }
            return listen.TrimEnd('/') + "/health/ready";
        }
        return "http://localhost:8080/health/ready";
    }
}
