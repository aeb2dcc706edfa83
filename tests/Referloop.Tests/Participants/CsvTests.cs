using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using CsvHelper;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Participants;

/// <summary>Participants imported from another platform's CSV, and participants, referrals and rewards exported as CSV.</summary>
public class CsvTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Task<HttpResponseMessage> Import(string campaign, string csv, bool dryRun = false, string contentType = "text/csv") =>
        _admin.PostAsync($"/api/v1/campaigns/{campaign}/participants/import{(dryRun ? "?dryRun=true" : "")}",
            new StringContent(csv, Encoding.UTF8, contentType));

    [Fact]
    public async Task A_nul_in_a_row_is_that_rows_error_not_a_failed_import()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var file = "email,name,code,role,referredBy,customValue\n"
            + "ann@example.com,Ann\0Lee,,,,\n"
            + "bob@example.com,,,friend,AB\0CD,\n"
            + "cid@example.com,,CD\0EF,,,\n"
            + "dee@example.com,,,,,v\0\n";

        var dry = await Json(await Import(campaign, file, dryRun: true), HttpStatusCode.OK);
        var refused = await Import(campaign, file);

        var errors = dry["errors"]!.AsArray().Select(e => ((int)e!["row"]!, (string?)e["column"])).ToArray();
        Assert.Equal([(2, "name"), (3, "referredBy"), (4, "code"), (5, "customValue")], errors);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Equal(0, await ParticipantCount(campaign));
    }

    private static async Task<JsonObject> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<List<Dictionary<string, string>>> Export(string campaign, string what)
    {
        var response = await _admin.GetAsync($"/api/v1/campaigns/{campaign}/{what}/export.csv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        return Rows(await response.Content.ReadAsByteArrayAsync());
    }

    private static List<Dictionary<string, string>> Rows(byte[] csv)
    {
        using var reader = CsvReader.Create(csv, CsvReaderOptions.Default with { Separator = ',' });
        var rows = new List<Dictionary<string, string>>();
        while (reader.Read())
        {
            rows.Add(reader.Headers.Select((h, i) => (h, i)).ToDictionary(c => c.h, c => reader.GetString(c.i)));
        }
        return rows;
    }

    private Task<int> ParticipantCount(string campaign) => app.WithDb(db => db.Participants.CountAsync(p => p.CampaignId == campaign));

    [Fact]
    public async Task An_imported_file_exports_with_its_codes_and_imports_again_as_already_there()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var file = """
            email,name,code,role,referredBy,customValue
            ann@example.com,Ann Lee,ANN-OLD-1,advocate,,crm-1
            Bob@Example.net,Bob Stone,BOB-OLD-2,friend,ANN-OLD-1,
            cy@example.org,Cy,,advocate,ANN-OLD-1,
            """;

        var report = await Json(await Import(campaign, file), HttpStatusCode.OK);

        Assert.Equal((true, 3, 3, 0, 2), ((bool)report["imported"]!, (int)report["rows"]!, (int)report["created"]!,
            (int)report["existing"]!, (int)report["referrals"]!));
        var exported = await Export(campaign, "participants");
        var ann = exported.Single(r => r["email"] == "ann@example.com");
        var bob = exported.Single(r => r["email"] == "bob@example.net");
        var cy = exported.Single(r => r["email"] == "cy@example.org");
        Assert.Equal(("ANN-OLD-1", "advocate", "", "crm-1"), (ann["code"], ann["role"], ann["referredBy"], ann["customValue"]));
        Assert.Equal(("BOB-OLD-2", "friend", "ANN-OLD-1"), (bob["code"], bob["role"], bob["referredBy"]));
        Assert.Equal(("advocate", "ANN-OLD-1", 8), (cy["role"], cy["referredBy"], cy["code"].Length));
        Assert.EndsWith("/r/ANN-OLD-1", ann["shareUrl"]);

        // The exported file is an import file: everyone is there already, nothing changes.
        var exportCsv = await (await _admin.GetAsync($"/api/v1/campaigns/{campaign}/participants/export.csv")).Content.ReadAsStringAsync();
        var again = await Json(await Import(campaign, exportCsv), HttpStatusCode.OK);
        Assert.Equal((3, 0, 3), ((int)again["rows"]!, (int)again["created"]!, (int)again["existing"]!));

        // An imported friend's purchase converts the imported referral, and the old code still attributes.
        var purchase = await _admin.Track(campaign, "purchase", "bob@example.net", orderId: "MIG-1", purchaseValue: 30);
        Assert.Equal(("approved", "issued"), ((string?)purchase["referral"]!["status"], (string?)purchase.Rewards()[0]!["status"]));
        var newFriend = await _admin.Track(campaign, "signup", "dee@example.net", "ANN-OLD-1");
        Assert.True((bool)newFriend["attributed"]!);
        var referrals = await Export(campaign, "referrals");
        Assert.Equal(3, referrals.Count);
        Assert.Contains(referrals, r => r["friendEmail"] == "bob@example.net" && r["attributedBy"] == "import" && r["status"] == "approved");
        var rewards = await Export(campaign, "rewards");
        Assert.Equal(("issued", "ann@example.com", "10"), (rewards.Single()["status"], rewards.Single()["participantEmail"], rewards.Single()["amount"]));
    }

    [Fact]
    public async Task A_file_cannot_make_a_stored_friend_the_advocate_of_its_rows()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        await Json(await Import(campaign, "email,code,role,referredBy\nann@example.com,ANN-CODE-7,advocate,\nfay@example.com,FAY-CODE-7,friend,ANN-CODE-7\n"),
            HttpStatusCode.OK);

        // Fay is stored as a friend: her row is left as it is, so she refers nobody.
        var dry = await Json(await Import(campaign, "email,code,role,referredBy\nfay@example.com,FAY-CODE-7,advocate,\nnew@example.com,,friend,FAY-CODE-7\n",
            dryRun: true), HttpStatusCode.OK);

        var error = Assert.Single(dry["errors"]!.AsArray())!;
        Assert.Equal((3, "referredBy"), ((int)error["row"]!, (string?)error["column"]));
    }

    [Fact]
    public async Task A_dry_run_reports_every_row_error_and_a_file_with_errors_writes_nothing()
    {
        var (other, _) = await _admin.Campaign(AdvocateTenDollars);
        await Json(await Import(other, "email,code\ntaken@example.com,TAKEN-CODE\n"), HttpStatusCode.OK);
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var file = """
            email,name,code,role,referredBy
            ok@example.com,Ok,OK-CODE-1,advocate,
            not-an-email,,,,
            dup@example.com,,OK-CODE-1,,
            friend@example.com,,,friend,
            lost@example.com,,,friend,NOBODY-1
            thief@example.com,,TAKEN-CODE,,
            OK@example.com,,,,
            odd@example.com,,,boss,
            """;

        var dry = await Json(await Import(campaign, file, dryRun: true), HttpStatusCode.OK);

        Assert.Equal((true, false, 8), ((bool)dry["dryRun"]!, (bool)dry["imported"]!, (int)dry["rows"]!));
        var errors = dry["errors"]!.AsArray().Select(e => ((int)e!["row"]!, (string?)e["column"])).ToArray();
        Assert.Equal([(3, "email"), (4, "code"), (5, "referredBy"), (6, "referredBy"), (7, "code"), (8, "email"), (9, "role")], errors);
        var duplicate = dry["errors"]!.AsArray().Single(e => (int)e!["row"]! == 4)!;
        Assert.Equal("repeats the code of row 2.", (string?)duplicate["rule"]);
        Assert.Equal(0, await ParticipantCount(campaign));

        var refused = await Import(campaign, file);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var problem = await refused.ReadJson();
        Assert.Equal(7, problem["report"]!["errors"]!.AsArray().Count);
        Assert.Equal(0, await ParticipantCount(campaign));

        var clean = await Json(await Import(campaign, "email,code\nok@example.com,OK-CODE-1\n", dryRun: true), HttpStatusCode.OK);
        Assert.Equal((1, false), ((int)clean["created"]!, (bool)clean["imported"]!));
        Assert.Equal(0, await ParticipantCount(campaign));
    }

    [Fact]
    public async Task Files_that_are_too_large_too_long_or_not_csv_are_refused_with_problems()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);

        var large = await Import(campaign, "email\n" + new string('x', 2 * 1024 * 1024));
        var rows = await Import(campaign, "email\n" + string.Concat(Enumerable.Range(0, 10_001).Select(i => $"p{i}@example.com\n")));
        var json = await Import(campaign, """{"email":"a@example.com"}""", contentType: "application/json");
        var noEmail = await Import(campaign, "name,code\nAnn,ANN-1\n");
        var unknown = await _admin.PostAsync("/api/v1/campaigns/cmp_nope/participants/import", new StringContent("email\n", Encoding.UTF8, "text/csv"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        Assert.Equal("application/problem+json", large.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, rows.StatusCode);
        Assert.Contains("more than 10,000 rows", (string)(await rows.ReadJson())["report"]!["errors"]![0]!["rule"]!);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, json.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noEmail.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(0, await ParticipantCount(campaign));
    }

    [Fact]
    public async Task Cells_a_spreadsheet_would_run_as_formulas_are_exported_as_text()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        string[] hostile = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+2", "-3", "@SUM(A1)"];
        for (var i = 0; i < hostile.Length; i++)
        {
            await _admin.Advocate(campaign, $"h{i}@example.com", hostile[i], customValue: "=cmd|' /C calc'!A0");
        }
        // Names are trimmed when they are stored; a custom value keeps a leading tab or carriage return.
        await _admin.Advocate(campaign, "tab@example.com", "Tab", customValue: "\t=1+1");
        await _admin.Advocate(campaign, "cr@example.com", "Cr", customValue: "\r=1+1");

        var response = await _admin.GetAsync($"/api/v1/campaigns/{campaign}/participants/export.csv");
        var raw = await response.Content.ReadAsStringAsync();
        var rows = Rows(Encoding.UTF8.GetBytes(raw));

        Assert.Equal(hostile.Select(h => "'" + h).Append("Tab").Append("Cr").Order(), rows.Select(r => r["name"]).Order());
        Assert.Equal(["'\t=1+1", "'\r=1+1", .. Enumerable.Repeat("'=cmd|' /C calc'!A0", 4)],
            rows.Select(r => r["customValue"]).OrderBy(v => v.Length).ThenBy(v => v, StringComparer.Ordinal).ToArray());
        Assert.DoesNotContain("\n=", raw);
        Assert.DoesNotContain(",=", raw);
        Assert.Contains("attachment", response.Content.Headers.ContentDisposition?.ToString());
    }

    [Fact]
    public async Task The_api_document_describes_the_csv_routes_and_refunds()
    {
        var document = await _admin.GetOk("/openapi/v1.json");
        var paths = document["paths"]!.AsObject();

        foreach (var what in new[] { "participants", "referrals", "rewards" })
        {
            var export = paths[$"/api/v1/campaigns/{{campaignId}}/{what}/export.csv"]!["get"]!;
            Assert.NotNull(export["responses"]!["200"]!["content"]!["text/csv"]);
        }
        var import = paths["/api/v1/campaigns/{campaignId}/participants/import"]!["post"]!;
        Assert.NotNull(import["requestBody"]!["content"]!["text/csv"]);
        Assert.Contains(import["parameters"]!.AsArray(), p => (string?)p!["name"] == "dryRun");
        var text = document.ToJsonString();
        Assert.Contains("\"reward.revoked\"", text);
        Assert.Contains("\"keep_if_other_purchases\"", text);
        Assert.Contains("\"clawback_required\"", text);
    }

    [Fact]
    public async Task The_campaign_page_links_the_downloads()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        await _admin.Advocate(campaign, "ann@example.com", "=Ann");
        var dashboard = await DashboardClient.SignedIn(app);

        var page = await dashboard.Page($"/admin/campaigns/{campaign}");
        var download = await dashboard.Http.GetAsync($"/admin/campaigns/{campaign}?handler=Export&what=participants");
        var unknown = await dashboard.Http.GetAsync($"/admin/campaigns/{campaign}?handler=Export&what=secrets");

        Assert.Contains($"/admin/campaigns/{campaign}?handler=Export&amp;what=rewards", page);
        Assert.Equal("text/csv", download.Content.Headers.ContentType?.MediaType);
        var row = Rows(await download.Content.ReadAsByteArrayAsync()).Single();
        Assert.Equal(("ann@example.com", "'=Ann"), (row["email"], row["name"]));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}
