using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Referloop.Tests.Hosting;

/// <summary>
/// A form sent chunked (no Content-Length; no browser does, a script may) to a real Kestrel server: a page's size limit
/// still holds, so nobody can make the server read megabytes of form before signing in.
/// </summary>
public class ChunkedFormTests(ListedProxyApp app) : IClassFixture<ListedProxyApp>
{
    [Fact]
    public async Task A_chunked_form_larger_than_the_sign_in_limit_is_refused_with_413()
    {
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        using var content = new ByteArrayContent(Encoding.ASCII.GetBytes("key=" + new string('k', 1024 * 1024)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/sign-in") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }
}
