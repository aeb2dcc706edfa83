using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>A server in the Production environment (with the <c>PublicUrl</c> it then requires).</summary>
public sealed class ProductionApp : ReferloopApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseEnvironment("Production");
    }
}

public class DashboardHeadersTests(ProductionApp app) : IClassFixture<ProductionApp>
{
    [Fact]
    public async Task Outside_Development_the_sign_in_cookie_is_Secure_even_over_plain_http()
    {
        var client = new DashboardClient(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));

        var response = await client.Submit("/admin/sign-in", new() { ["key"] = ReferloopApp.AdminKey });

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var cookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("referloop_admin="));
        Assert.Contains("; secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("; httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("; samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("/admin/sign-in")]
    [InlineData("/admin/campaigns")] // the redirect to the sign-in page
    public async Task Dashboard_answers_carry_a_content_security_policy_that_forbids_framing(string url)
    {
        var response = await app.CreateAnonymousClient().GetAsync(url);

        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        foreach (var directive in new[] { "default-src 'self'", "frame-ancestors 'none'", "base-uri 'self'", "form-action 'self'",
                     "object-src 'none'" })
        {
            Assert.Contains(directive, policy);
        }
        Assert.DoesNotContain("unsafe-inline", policy);
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("same-origin", response.Headers.GetValues("Referrer-Policy").Single());
    }

    [Fact]
    public async Task Signed_in_pages_carry_the_policy_and_no_inline_script_or_handler()
    {
        var client = new DashboardClient(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));
        var signedIn = await client.Submit("/admin/sign-in", new() { ["key"] = ReferloopApp.AdminKey });
        // The Secure cookie does not travel back over the test's http: carry it by hand.
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("referloop_admin="));
        client.Http.DefaultRequestHeaders.Add("Cookie", cookie[..cookie.IndexOf(';')]);
        var campaign = await app.CreateAdminClient().CreateCampaign();

        foreach (var url in new[] { "/admin", $"/admin/campaigns/{campaign}", "/admin/analytics", "/admin/webhooks/new" })
        {
            var response = await client.Http.GetAsync(url);
            response.EnsureStatus(HttpStatusCode.OK);
            Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
            var html = await response.Content.ReadAsStringAsync();
            Assert.DoesNotMatch(@"<script(?![^>]*\ssrc=)", html);
            Assert.DoesNotMatch(@"\son[a-z]+=""", html);
            Assert.DoesNotContain(" style=\"", html);
        }
    }

    [Fact]
    public async Task The_api_reference_is_left_to_its_own_scripts()
    {
        var response = await app.CreateClient().GetAsync("/docs");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Content-Security-Policy"));
    }
}
