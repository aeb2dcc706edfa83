using System.Data.Common;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Campaigns;
using Referloop.Tests.Support;

namespace Referloop.Tests.Campaigns;

/// <summary>
/// Two saves of one slug at once (two requests, or two instances on one database): the check finds it free for both,
/// and the unique index decides. The loser is told the slug is taken, as when the check finds it.
/// </summary>
public class CampaignSlugRaceTests(CampaignSlugRaceTests.RaceApp app) : IClassFixture<CampaignSlugRaceTests.RaceApp>
{
    public sealed class RaceApp : ReferloopApp
    {
        public SlugCheckBlinder Blinder { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Blinder);
        }
    }

    /// <summary>Makes the slug check miss <see cref="Slug"/>, as when the other save commits just after the check.</summary>
    public sealed class SlugCheckBlinder : DbCommandInterceptor
    {
        public volatile string? Slug;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (Slug is { } slug && command.CommandText.StartsWith("SELECT", StringComparison.Ordinal)
                && command.CommandText.Contains("\"Slug\"", StringComparison.Ordinal))
            {
                foreach (DbParameter parameter in command.Parameters)
                {
                    if (Equals(parameter.Value, slug))
                    {
                        parameter.Value = slug + "-not-yet";
                    }
                }
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task A_slug_taken_after_the_check_is_refused_naming_the_slug()
    {
        await _client.PostOk("/api/v1/campaigns", new { name = "First", landingUrl = "https://shop.example.com", slug = "race-slug" });
        var other = await _client.PostOk("/api/v1/campaigns", new { name = "Other", landingUrl = "https://shop.example.com" });
        app.Blinder.Slug = "race-slug";
        try
        {
            var created = await _client.PostAsJsonAsync("/api/v1/campaigns",
                new { name = "Second", landingUrl = "https://shop.example.com", slug = "race-slug" });
            var problem = await created.AssertValidationProblem("slug");
            Assert.Equal(CampaignsApi.SlugTakenMessage, (string)problem["errors"]!["slug"]![0]!);

            var updated = await _client.PutAsJsonAsync($"/api/v1/campaigns/{other["id"]}",
                new { name = "Other", landingUrl = "https://shop.example.com", slug = "race-slug" });
            await updated.AssertValidationProblem("slug");
        }
        finally
        {
            app.Blinder.Slug = null;
        }
        var unchanged = await _client.GetOk($"/api/v1/campaigns/{other["id"]}");
        Assert.Null(unchanged["slug"]);
    }
}
