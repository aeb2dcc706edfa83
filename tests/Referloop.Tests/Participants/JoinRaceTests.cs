using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
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
        public LookupMeeting Meeting { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Meeting);
        }
    }

    /// <summary>
    /// Holds each join's look-up of <see cref="Email"/> until <see cref="Count"/> of them have read the participant, so
    /// that all of them read it before any writes.
    /// </summary>
    public sealed class LookupMeeting : DbCommandInterceptor
    {
        public volatile string? Email;
        public int Count;
        private int _arrived;
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData,
            DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (Email is { } email && command.CommandText.Contains("FROM \"participants\"", StringComparison.Ordinal)
                && command.Parameters.Cast<DbParameter>().Any(p => Equals(p.Value, email)))
            {
                if (Interlocked.Increment(ref _arrived) >= Count)
                {
                    _all.TrySetResult();
                }
                // Bounded: a join that never meets the others goes on alone.
                await _all.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            return result;
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

        app.Meeting.Count = 2;
        app.Meeting.Email = email;
        HttpResponseMessage[] responses;
        try
        {
            responses = await Task.WhenAll(
                _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email, name = "Twice" }),
                _client.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email, name = "Twice" }));
        }
        finally
        {
            app.Meeting.Email = null;
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
