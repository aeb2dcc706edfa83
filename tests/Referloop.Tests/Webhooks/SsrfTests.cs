using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Referloop.Tests.Support;

namespace Referloop.Tests.Webhooks;

public class SsrfTests(GuardedApp app) : IClassFixture<GuardedApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Theory]
    [InlineData("http://127.0.0.1/hook")]
    [InlineData("http://localhost:8080/hook")]
    [InlineData("http://10.1.2.3/hook")]
    [InlineData("http://172.16.0.1/hook")]
    [InlineData("http://192.168.1.10/hook")]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://169.254.10.1/hook")]
    [InlineData("http://100.64.0.1/hook")]
    [InlineData("http://0.0.0.0/hook")]
    [InlineData("http://224.0.0.1/hook")]
    [InlineData("http://[::1]/hook")]
    [InlineData("http://[fd00:ec2::254]/hook")]
    [InlineData("http://[fc00::1]/hook")]
    [InlineData("http://[fe80::1]/hook")]
    [InlineData("http://[::ffff:127.0.0.1]/hook")]
    [InlineData("http://[::ffff:127.0.0.1]:8080/")]
    [InlineData("http://[::127.0.0.1]:8080/")]
    [InlineData("http://[64:ff9b::7f00:1]:8080/")]
    [InlineData("http://[2002:7f00:1::1]:8080/")]
    [InlineData("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook")]
    [InlineData("http://198.18.0.1/hook")]
    [InlineData("http://240.0.0.1/hook")]
    [InlineData("http://192.0.0.192/hook")]
    [InlineData("https://intranet.example.com/hook")]
    [InlineData("https://metadata.example.com/hook")]
    public async Task Internal_addresses_are_refused_at_creation(string url)
    {
        var response = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints", new { url });

        var problem = await response.AssertValidationProblem("url");
        Assert.Contains("must not point at", (string)problem["errors"]!["url"]![0]!);
    }

    [Fact]
    public async Task Public_addresses_and_names_that_do_not_resolve_yet_are_accepted()
    {
        // Disabled at once and deleted: these tests never send anything beyond loopback.
        foreach (var url in new[] { "https://93.184.215.14/hook", "https://not-yet.example.com/hook" })
        {
            var created = await _client.PostOk("/api/v1/webhook-endpoints", new { url, enabled = false });
            (await _client.DeleteAsync($"/api/v1/webhook-endpoints/{created["id"]}")).EnsureStatus(HttpStatusCode.NoContent);
        }
    }

    [Fact]
    public async Task A_name_that_resolves_to_loopback_at_send_time_is_refused_and_logged()
    {
        await using var receiver = await Receiver.StartAsync();
        app.Dns.Answers["rebind.example.com"] = [IPAddress.Parse("93.184.215.14")];
        var campaign = await _client.CreateCampaign();
        var created = await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = $"http://rebind.example.com:{receiver.Port}/hook", campaignId = campaign });
        var endpointId = (string)created["id"]!;

        // The DNS answer changes after the check at creation.
        app.Dns.Answers["rebind.example.com"] = [IPAddress.Loopback];
        await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "sam@example.com" });

        JsonObject? delivery = null;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            delivery = (await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages"))["data"]!.AsArray().SingleOrDefault()?.AsObject();
            if (delivery is not null && (int)delivery["attemptCount"]! >= 1)
            {
                break;
            }
            await Task.Delay(30);
        }
        Assert.NotNull(delivery);
        var attempt = delivery["attempts"]!.AsArray()[0]!;
        Assert.Null(attempt["statusCode"]);
        Assert.Contains("rebind.example.com resolves to 127.0.0.1, a loopback address", (string)attempt["error"]!);
        Assert.Empty(receiver.Requests);
        (await _client.DeleteAsync($"/api/v1/webhook-endpoints/{endpointId}")).EnsureStatus(HttpStatusCode.NoContent);
    }
}
