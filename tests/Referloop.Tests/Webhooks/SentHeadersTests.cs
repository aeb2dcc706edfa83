using System.Text;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

public class SentHeadersTests
{
    [Fact]
    public void Custom_and_credential_headers_are_redacted_and_signing_headers_kept()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://crm.example.com/hook")
        {
            Content = new StringContent("{}", Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-crm-key", "k-123");
        request.Headers.TryAddWithoutValidation("Cookie", "session=abc");
        request.Headers.TryAddWithoutValidation("webhook-id", "msg_1");

        var headers = SentHeaders.Read(SentHeaders.Record(request, new Dictionary<string, string> { ["X-CRM-Key"] = "k-123" }))!;

        Assert.Equal(SentHeaders.Redacted, headers["x-crm-key"]);
        Assert.Equal(SentHeaders.Redacted, headers["Cookie"]);
        Assert.Equal("msg_1", headers["webhook-id"]);
        Assert.Equal("application/json; charset=utf-8", headers["Content-Type"]);
    }

    [Fact]
    public void Headers_past_the_column_length_are_left_out_and_the_json_stays_whole()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://crm.example.com/hook");
        for (var i = 0; i < 40; i++)
        {
            request.Headers.TryAddWithoutValidation($"X-Trace-{i}", new string('é', 200));
        }

        var json = SentHeaders.Record(request, new Dictionary<string, string>());

        Assert.True(json.Length <= SentHeaders.MaxLength, $"{json.Length} characters");
        var headers = SentHeaders.Read(json)!;
        Assert.Equal("further headers left out", headers["…"]);
        Assert.Equal(new string('é', 200), headers["X-Trace-0"]);
    }
}
