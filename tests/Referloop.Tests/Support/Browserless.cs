using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Referloop.Tests.Support;

/// <summary>
/// A cookie-keeping client for the server-rendered dashboard: reads the antiforgery token from each form page
/// and posts forms the way a browser would.
/// </summary>
public sealed partial class DashboardClient(HttpClient http)
{
    public HttpClient Http => http;

    public static async Task<DashboardClient> SignedIn(ReferloopApp app)
    {
        var client = new DashboardClient(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));
        var response = await client.Submit("/admin/sign-in", new() { ["key"] = ReferloopApp.AdminKey });
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return client;
    }

    public async Task<string> Page(string url)
    {
        var response = await http.GetAsync(url);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {url} answered {(int)response.StatusCode}");
        return html;
    }

    /// <summary>Loads <paramref name="pageUrl"/>, takes its antiforgery token and posts <paramref name="fields"/>.</summary>
    public async Task<HttpResponseMessage> Submit(string pageUrl, Dictionary<string, string> fields, string? action = null)
    {
        var html = await Page(pageUrl);
        var token = TokenPattern().Match(html);
        Assert.True(token.Success, $"no antiforgery token on {pageUrl}");
        fields["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value);
        return await http.PostAsync(action ?? pageUrl, new FormUrlEncodedContent(fields));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();
}
