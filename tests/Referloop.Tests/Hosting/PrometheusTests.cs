using System.Net;
using Referloop.Tests.Support;

namespace Referloop.Tests.Hosting;

public sealed class PrometheusApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Metrics:Prometheus"] = "true",
    };
}

/// <summary><c>Metrics:Prometheus=true</c> serves the OpenTelemetry metrics at <c>/metrics</c> in Prometheus' text format.</summary>
public class PrometheusTests(PrometheusApp app) : IClassFixture<PrometheusApp>
{
    [Fact]
    public async Task When_enabled_metrics_are_scraped_at_metrics()
    {
        var client = app.CreateAnonymousClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);

        // The exporter reads the meters when scraped; the request above is in the next collection at the latest.
        string text = "";
        for (var attempt = 0; attempt < 20 && !text.Contains("http_server_request_duration_seconds"); attempt++)
        {
            var response = await client.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            text = await response.Content.ReadAsStringAsync();
            await Task.Delay(100);
        }
        Assert.Contains("http_server_request_duration_seconds_bucket", text);
    }
}

public class PrometheusOffTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task By_default_there_is_no_metrics_endpoint()
    {
        var response = await app.CreateAnonymousClient().GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
