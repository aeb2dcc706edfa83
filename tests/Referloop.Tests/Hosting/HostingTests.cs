using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;

namespace Referloop.Tests.Hosting;

public class HostingTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task Liveness_and_readiness_answer_healthy()
    {
        var client = app.CreateAnonymousClient();
        var live = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());

        // Readiness says what it checked, and why when it is degraded (a GeoIP database missing: see PublishedBuildTests).
        var ready = await client.GetOk("/health/ready");
        Assert.Equal("Healthy", (string?)ready["checks"]!["database"]!["status"]);
        Assert.NotNull(ready["checks"]!["geoip"]);
    }

    [Fact]
    public void Settings_files_are_read_once_and_not_watched()
    {
        // A watch on the content root wakes on every write beneath it: the SQLite database of the container image
        // (/app/data) is there, and the watch cost about a fifth more server CPU per event.
        var configuration = (IConfigurationRoot)app.Services.GetRequiredService<IConfiguration>();
        var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();

        Assert.Contains(files, file => file.Source.Path == "appsettings.json");
        Assert.All(files, file => Assert.False(file.Source.ReloadOnChange, $"{file.Source.Path} is watched"));
    }

    [Fact]
    public async Task The_openapi_document_describes_every_endpoint_with_a_summary()
    {
        var document = await app.CreateAnonymousClient().GetOk("/openapi/v1.json");

        var paths = document["paths"]!.AsObject();
        foreach (var path in new[] { "/api/v1/campaigns", "/api/v1/campaigns/{id}/pause", "/api/v1/campaigns/{campaignId}/participants",
                     "/api/v1/campaigns/{campaignId}/participants/{id}/export", "/api/v1/api-keys", "/r/{code}" })
        {
            Assert.True(paths.ContainsKey(path), $"missing {path}");
        }
        foreach (var (path, item) in paths)
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                Assert.False(string.IsNullOrWhiteSpace((string?)operation!["summary"]), $"{method} {path} has no summary");
            }
        }
        Assert.NotNull(document["components"]!["securitySchemes"]!["Bearer"]);
    }

    [Fact]
    public async Task Each_operation_says_which_key_it_needs_and_public_routes_need_none()
    {
        var document = await app.CreateAnonymousClient().GetOk("/openapi/v1.json");
        var paths = document["paths"]!.AsObject();
        string[] Schemes(string path, string method) =>
            [.. (paths[path]![method]!["security"]?.AsArray() ?? []).SelectMany(r => r!.AsObject().Select(p => p.Key))];

        Assert.Null(document["security"]);
        Assert.Equal(["Bearer"], Schemes("/api/v1/campaigns", "post"));
        Assert.Equal(["Bearer"], Schemes("/api/v1/events", "get"));
        Assert.Equal(["Bearer", "PublishableKey"], Schemes("/api/v1/events", "post"));
        Assert.Equal(["Bearer", "PublishableKey"], Schemes("/api/v1/campaigns/{id}/social-proof", "get"));
        Assert.Empty(Schemes("/r/{code}", "get"));
        Assert.Empty(Schemes("/hooks/{token}", "post"));
        Assert.Empty(Schemes("/js/referloop.js", "get"));
        Assert.Equal("X-Referloop-Key", (string?)document["components"]!["securitySchemes"]!["PublishableKey"]!["name"]);
    }

    [Fact]
    public async Task The_interactive_reference_page_is_served()
    {
        var response = await app.CreateClient().GetAsync("/docs");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
    }
}
