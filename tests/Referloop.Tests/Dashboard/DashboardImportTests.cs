using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>The dashboard's CSV import: a dry run with its report, then a confirm step that imports every row or none.</summary>
public partial class DashboardImportTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task A_dry_run_reports_row_errors_and_imports_nothing()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Import errors" });
        var client = await DashboardClient.SignedIn(app);

        var html = await Check(client, campaign, "email,name\nimp-ok@example.com,Ann\nnot-an-email,Bob\n");

        Assert.Contains("The file has errors", html);
        Assert.Matches(new Regex(@"<td>3</td><td>email</td>"), html);
        Assert.DoesNotContain("name=\"checked\"", html);
        Assert.DoesNotContain("imp-ok@example.com", await client.Page($"/admin/campaigns/{campaign}?search=imp-ok"));
    }

    [Fact]
    public async Task A_checked_file_is_imported_on_confirm()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Import ok" });
        var client = await DashboardClient.SignedIn(app);
        Assert.Contains($"href=\"/admin/campaigns/{campaign}/import\"", await client.Page($"/admin/campaigns/{campaign}"));

        var checkedPage = await Check(client, campaign, "email,name,code\nimp-ann@example.com,Ann,IMPANN1\nimp-bob@example.com,Bob,\n");
        Assert.Contains("Ready to import", checkedPage);
        Assert.DoesNotContain("imp-ann@example.com", await client.Page($"/admin/campaigns/{campaign}?search=imp-ann"));
        var file = CheckedPattern().Match(checkedPage);
        Assert.True(file.Success);

        var response = await client.Submit($"/admin/campaigns/{campaign}/import",
            new() { ["checked"] = WebUtility.HtmlDecode(file.Groups[1].Value) }, $"/admin/campaigns/{campaign}/import?handler=Import");
        var imported = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Imported", imported);
        var details = await client.Page($"/admin/campaigns/{campaign}?search=imp-");
        Assert.Contains("imp-ann@example.com", details);
        Assert.Contains("IMPANN1", details);
        Assert.Contains("imp-bob@example.com", details);
    }

    private static async Task<string> Check(DashboardClient client, string campaign, string csv)
    {
        var page = await client.Page($"/admin/campaigns/{campaign}/import");
        var token = TokenPattern().Match(page);
        Assert.True(token.Success);
        using var form = new MultipartFormDataContent
        {
            { new StringContent(WebUtility.HtmlDecode(token.Groups[1].Value)), "__RequestVerificationToken" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(csv)), "file", "people.csv" },
        };
        var response = await client.Http.PostAsync($"/admin/campaigns/{campaign}/import?handler=Check", form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();

    [GeneratedRegex("name=\"checked\" value=\"([^\"]+)\"")]
    private static partial Regex CheckedPattern();
}
