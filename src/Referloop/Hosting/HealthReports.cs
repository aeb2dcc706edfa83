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
