using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Referloop.Http;

namespace Referloop.Tests.Hosting;

/// <summary>A trace of a request never carries the portal, unsubscribe or hook token in its path.</summary>
public class TracedPathsTests
{
    [Theory]
    [InlineData("/p/pt_s3cret", "/p/{token}")]
    [InlineData("/p/pt_s3cret/qr.svg", "/p/{token}/qr.svg")]
    [InlineData("/unsubscribe/CfDJ8abc", "/unsubscribe/{token}")]
    [InlineData("/hooks/hk_s3cret", "/hooks/{token}")]
    [InlineData("/P/pt_s3cret", "/P/{token}")]
    [InlineData("/api/v1/events", "/api/v1/events")]
    [InlineData("/join/spring", "/join/spring")]
    [InlineData("/r/ANN12345", "/r/ANN12345")]
    public void Paths_with_a_token_are_traced_without_it(string path, string traced) =>
        Assert.Equal(traced, TracedPaths.Redact(path));

    [Fact]
    public void The_request_span_gets_the_redacted_path()
    {
        using var activity = new Activity("request").Start();
        activity.SetTag("url.path", "/p/pt_s3cret");
        var http = new DefaultHttpContext();
        http.Request.Path = "/p/pt_s3cret";

        TracedPaths.Enrich(activity, http.Request);

        Assert.Equal("/p/{token}", activity.GetTagItem("url.path"));
    }
}
