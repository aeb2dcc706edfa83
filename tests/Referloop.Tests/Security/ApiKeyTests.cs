using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Security;

public class ApiKeyTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer rl_admin_wrong_key_000000000000000")]
    [InlineData("Basic dXNlcjpwYXNz")]
    public async Task Requests_without_a_valid_key_get_401_problem_details(string? authorization)
    {
        var client = app.CreateAnonymousClient();
        if (authorization is not null)
        {
            client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", authorization);
        }

        foreach (var url in new[] { "/api/v1/campaigns", "/api/v1/api-keys", "/api/v1/campaigns/x/participants" })
        {
            var response = await client.GetAsync(url);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
            Assert.Contains("API key", (string)(await response.ReadJson())["title"]!);
        }
    }

    [Fact]
    public async Task Keys_are_created_shown_once_listed_without_secret_and_revoked()
    {
        var created = await _admin.PostOk("/api/v1/api-keys", new { name = "CRM sync" });
        var key = (string)created["key"]!;
        Assert.StartsWith("rl_admin_", key);
        Assert.StartsWith((string)created["prefix"]!, key);

        var client = app.CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/campaigns")).StatusCode);

        var listed = await _admin.GetAsync("/api/v1/api-keys");
        var listText = await listed.Content.ReadAsStringAsync();
        Assert.Contains("CRM sync", listText);
        Assert.DoesNotContain(key, listText);

        var stored = await app.WithDb(db => db.ApiKeys.AsNoTracking().SingleAsync(k => k.Id == (string)created["id"]!));
        Assert.NotEqual(key, stored.Hash);
        Assert.DoesNotContain(key, stored.Hash);

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/api-keys/{created["id"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/campaigns")).StatusCode);
    }

    [Fact]
    public async Task A_key_needs_a_name_and_unknown_keys_cannot_be_revoked()
    {
        await (await _admin.PostAsJsonAsync("/api/v1/api-keys", new { name = " " })).AssertValidationProblem("name");
        Assert.Equal(HttpStatusCode.NotFound, (await _admin.DeleteAsync("/api/v1/api-keys/key_missing")).StatusCode);
    }
}

public class LastKeyTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task The_last_active_key_cannot_be_revoked()
    {
        var admin = app.CreateAdminClient();
        var keys = (await admin.GetAsync("/api/v1/api-keys"));
        var list = System.Text.Json.Nodes.JsonNode.Parse(await keys.Content.ReadAsStringAsync())!.AsArray();
        var only = Assert.Single(list);

        var response = await admin.DeleteAsync($"/api/v1/api-keys/{only!["id"]}");

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("last active", (string)(await response.ReadJson())["detail"]!);
    }
}
