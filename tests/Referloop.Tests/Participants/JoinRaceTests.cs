using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Referloop.Participants;
using Referloop.Security;
using Referloop.Tests.Support;

namespace Referloop.Tests.Participants;

/// <summary>
/// An invited friend joins as an advocate twice at once (the API, the join page, the dashboard): both joins read them
/// as not yet a referrer. Only one may announce the join (participant.joined, and with it the welcome mail).
/// </summary>
public class JoinRaceTests(JoinRaceTests.RaceApp app) : IClassFixture<JoinRaceTests.RaceApp>
{
    public sealed class RaceApp : ReferloopApp
    {
        public ReadMeeting Meeting { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Meeting);
        }
    }

    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task An_invited_friend_joining_twice_at_once_is_announced_once()
    {
        var campaign = await _client.CreateCampaign();
        const string email = "twice@example.net";
        var now = app.Clock.GetUtcNow();
        var friend = new Participant
        {
            Id = "par_race_friend", CampaignId = campaign, Email = email, Code = Secrets.NewCode(), IsReferrer = false, IsInvited = true,
            CreatedAt = now, UpdatedAt = now,
        };
        await app.WithDb(async db =>
        {
            db.Participants.Add(friend);
            return await db.SaveChangesAsync();
        });

        // Both joins read the friend before either writes.
        app.Meeting.Arm("participants", email, 2, TimeSpan.FromSeconds(10));
        HttpResponseMessage[] responses;
        try
        {
            responses = await Task.WhenAll(
                _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email, name = "Twice" }),
                _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email, name = "Twice" }));
        }
        finally
        {
            app.Meeting.Disarm();
        }

        Assert.All(responses, r => r.EnsureStatus(HttpStatusCode.OK));
        var stored = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.Id == friend.Id));
        Assert.True(stored.IsReferrer);
        Assert.Equal("Twice", stored.Name);
        var joined = await app.WithDb(db => db.Outbox.AsNoTracking()
            .Where(m => m.CampaignId == campaign && m.Type == "participant.joined").Select(m => m.Data).ToListAsync());
        var data = JsonNode.Parse(Assert.Single(joined))!;
        Assert.Equal(friend.Id, (string)data["participant"]!["id"]!);
        Assert.Equal("referrer", (string)data["participant"]!["role"]!);
    }
}
