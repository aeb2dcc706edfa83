using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>
/// Runs the served snippet in Node with a minimal page (location, cookies, storage, fetch) and sends the request it
/// builds to the server, as the shop page would.
/// </summary>
public class TrackingSnippetTests(EngineApp app) : IClassFixture<EngineApp>
{
    private const string Page = """
        const script = require("fs").readFileSync(0, "utf8");
        const jar = {};
        const document = {
          currentScript: { src: "http://referloop.test/js/referloop.js", getAttribute: n => n === "data-key" ? process.env.RL_KEY : null },
          querySelectorAll: () => [],
        };
        Object.defineProperty(document, "cookie", {
          get: () => Object.entries(jar).map(([k, v]) => k + "=" + v).join("; "),
          set: v => { const kv = v.split(";")[0]; const i = kv.indexOf("="); jar[kv.slice(0, i)] = kv.slice(i + 1); },
        });
        const sent = [];
        const window = {
          location: { search: process.env.RL_SEARCH },
          localStorage: { items: {}, setItem(k, v) { this.items[k] = v; }, getItem(k) { return this.items[k] ?? null; } },
          fetch: (url, init) => { sent.push({ url, headers: init.headers, body: JSON.parse(init.body) }); return Promise.resolve({ json: () => ({}) }); },
        };
        new Function("window", "document", script)(window, document);
        window.location.search = ""; // the next page of the shop: the click id comes from the cookie now
        window.referloop.purchase({ email: "snippet@example.net", name: "Sam", orderID: "WEB-77", purchaseValue: "120.5", currency: "USD" });
        console.log(JSON.stringify(sent[0]));
        """;

    [Fact]
    public async Task The_snippet_reports_a_purchase_with_the_click_id_it_kept_from_the_landing_url()
    {
        var admin = app.CreateAdminClient();
        var (campaign, publishableKey) = await admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        var (advocateId, code) = await admin.Advocate(campaign);
        var landing = (await app.CreateAnonymousClient().GetAsync($"/r/{code}")).Headers.Location!;
        var clickId = QueryHelpers.ParseQuery(landing.Query)["rl_click"].ToString();
        var script = await app.CreateAnonymousClient().GetStringAsync("/js/referloop.js");

        var request = JsonNode.Parse(await RunNode(script, publishableKey, $"?rl_click={clickId}"))!.AsObject();

        Assert.Equal("http://referloop.test/api/v1/events", (string?)request["url"]);
        Assert.Equal(publishableKey, (string?)request["headers"]!["X-Referloop-Key"]);
        var body = request["body"]!.AsObject();
        Assert.Equal("purchase", (string?)body["type"]);
        Assert.Equal(clickId, (string?)body["clickId"]);
        Assert.Equal("WEB-77", (string?)body["orderId"]);
        Assert.Equal(120.5m, (decimal)body["purchaseValue"]!);

        var browser = app.CreateAnonymousClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        post.Headers.Add("X-Referloop-Key", publishableKey);
        var response = await browser.SendAsync(post);
        response.EnsureStatus(HttpStatusCode.Accepted);
        var outcome = await response.ReadJson();
        Assert.Equal("click_id", (string?)outcome["attributedBy"]);
        Assert.Single(await admin.RewardList($"participantId={advocateId}&status=issued"));
    }

    private static async Task<string> RunNode(string script, string key, string search)
    {
        var harness = Path.Combine(Path.GetTempPath(), $"referloop-snippet-{Guid.NewGuid():N}.js");
        await File.WriteAllTextAsync(harness, Page);
        try
        {
            var start = new ProcessStartInfo("node", harness)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                Environment = { ["RL_KEY"] = key, ["RL_SEARCH"] = search },
            };
            using var node = Process.Start(start)!;
            await node.StandardInput.WriteAsync(script);
            node.StandardInput.Close();
            var output = await node.StandardOutput.ReadToEndAsync();
            var error = await node.StandardError.ReadToEndAsync();
            await node.WaitForExitAsync();
            Assert.True(node.ExitCode == 0, "node failed: " + error);
            return output.Trim();
        }
        finally
        {
            File.Delete(harness);
        }
    }
}
