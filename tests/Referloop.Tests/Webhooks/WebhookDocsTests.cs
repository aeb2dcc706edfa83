using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>docs/webhooks.md shows exactly what is sent: its examples are checked against the payload builder.</summary>
public partial class WebhookDocsTests
{
    private static readonly DateTimeOffset ExampleTime = new(2026, 11, 20, 14, 3, 12, TimeSpan.Zero);

    private static string Doc()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "docs", "webhooks.md");
            if (File.Exists(path))
            {
                return File.ReadAllText(path).ReplaceLineEndings("\n");
            }
        }
        throw new InvalidOperationException("docs/webhooks.md not found");
    }

    private static OutboxMessage Example(string type) => new()
    {
        Id = "msg_example",
        Type = type,
        Data = ExamplePayloads.Data[type],
        CreatedAt = ExampleTime,
    };

    [Fact]
    public void Every_event_type_is_documented_with_the_json_payload_sent()
    {
        var doc = Doc();
        foreach (var type in WebhookEndpointInput.Subscribable)
        {
            var match = Regex.Match(doc, $"### `{Regex.Escape(type)}`\\n.*?```json\\n(.*?)\\n```", RegexOptions.Singleline);
            Assert.True(match.Success, $"docs/webhooks.md has no json example for {type}");
            var documented = JsonNode.Parse(match.Groups[1].Value);
            var sent = JsonNode.Parse(WebhookPayload.JsonEnvelope(Example(type)));
            Assert.True(JsonNode.DeepEquals(documented, sent), $"the {type} example differs from what is sent:\n{sent}");
        }
    }

    [Fact]
    public void The_form_and_query_examples_are_what_is_sent()
    {
        var doc = Doc();
        var form = WebhookPayload.Build(WebhookFormat.Form, "https://crm.example.com/hooks", Example(EventTypes.ReferralApproved));
        Assert.Contains("\n" + form.Body + "\n", doc);
        var query = WebhookPayload.Build(WebhookFormat.Query, "https://shop.example.com/referral-callback?token=abc", Example(EventTypes.Conversion));
        Assert.Contains("GET " + new Uri(query.Url).PathAndQuery + " HTTP/1.1", doc);
    }
}
