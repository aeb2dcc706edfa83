using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.HostedPages;
using Referloop.Hosting;
using Referloop.Referrals;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>A visit through a share link, as its request saw it.</summary>
public sealed record Visit(string Code, string? Ip, string? UserAgent, string? Referrer)
{
    /// <summary>The visitor's address in one text per address, as events' (<see cref="TrackRequest.Ip"/>).</summary>
    public string? Ip { get; init; } = BlockLists.CanonicalIp(Ip);
}

/// <summary>
/// Where a visit goes: the link's campaign, and the click the visit counts as (none when the campaign is not active,
/// whose visitors land without attribution).
/// </summary>
public sealed record FollowedLink(string LandingUrl, int AttributionWindowDays, PageSettings? Page, string? ClickId);

/// <summary>
/// The share links' write path: requests queue their visits and wait; one loop takes every visit that has arrived (at
/// most <see cref="MaxBatch"/>), reads the batch's codes and the clicks their addresses made within
/// <see cref="ShareLinks.RepeatWindow"/> once, inserts the new clicks in one transaction, then answers each request.
/// A visit that repeats one of the same batch counts as that one's click. When a batch fails, its visits run again
/// one by one, so one bad visit fails alone; unless the database failed (<see cref="DatabaseOutage"/>).
/// </summary>
public sealed class ShareLinkVisits : IAsyncDisposable
{
    /// <summary>The most visits one transaction holds.</summary>
    public const int MaxBatch = 256;

    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _clock;
    private readonly ILogger<ShareLinkVisits> _log;
    private readonly Lazy<Task> _loop;

    public ShareLinkVisits(IServiceScopeFactory scopes, TimeProvider clock, ILogger<ShareLinkVisits> log)
    {
        _scopes = scopes;
        _clock = clock;
        _log = log;
        _loop = Loops.StartedOnFirstUse(LoopAsync);
    }

    private sealed record Job(Visit Visit)
    {
        public TaskCompletionSource<FollowedLink?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record Link(string Id, string CampaignId, string Code, string LandingUrl, string Status,
        int AttributionWindowDays, PageSettings? Page);

    /// <summary>Records the visit's click once it is durable; null when no link has the code. Not cancellable once queued.</summary>
    public Task<FollowedLink?> FollowAsync(Visit visit)
    {
        var job = new Job(visit);
        if (!_queue.Writer.TryWrite(job))
        {
            throw new ObjectDisposedException(nameof(ShareLinkVisits));
        }
        _ = _loop.Value;
        return job.Done.Task;
    }

    private async Task LoopAsync()
    {
        while (await _queue.Reader.WaitToReadAsync())
        {
            var batch = new List<Job>();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var job))
            {
                batch.Add(job);
            }
            try
            {
                await RunAsync(batch);
            }
            catch (Exception e) when (batch.Count > 1 && !DatabaseOutage.Is(e))
            {
                _log.LogWarning(e, "A batch of {Count} share link visits failed; running them one by one", batch.Count);
                foreach (var job in batch)
                {
                    try
                    {
                        await RunAsync([job]);
                    }
                    catch (Exception alone)
                    {
                        job.Done.TrySetException(alone);
                    }
                }
            }
            catch (Exception e)
            {
                _log.LogError(e, "A batch of {Count} share link visits failed", batch.Count);
                foreach (var job in batch)
                {
                    job.Done.TrySetException(e);
                }
            }
        }
    }

    private async Task RunAsync(List<Job> batch)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var now = _clock.GetUtcNow();
        var ct = CancellationToken.None;

        var codes = batch.Select(j => j.Visit.Code).Distinct().ToList();
        var links = await db.Participants.AsNoTracking()
            .Where(p => codes.Contains(p.Code))
            .Select(p => new Link(p.Id, p.CampaignId, p.Code, p.Campaign!.LandingUrl, p.Campaign.Status,
                p.Campaign.AttributionWindowDays, p.Campaign.Page))
            .ToDictionaryAsync(l => l.Code, ct);
        var repeats = await RecentClicksAsync(db, batch, links, now, ct);

        var answers = new FollowedLink?[batch.Count];
        var clicks = new List<Click>();
        for (var i = 0; i < batch.Count; i++)
        {
            var visit = batch[i].Visit;
            if (!links.TryGetValue(visit.Code, out var link))
            {
                continue;
            }
            string? clickId = null;
            if (link.Status == CampaignStatus.Active && (visit.Ip is null || !repeats.TryGetValue((link.Id, visit.Ip), out clickId)))
            {
                var click = new Click
                {
                    Id = Ids.New("clk"),
                    CampaignId = link.CampaignId,
                    ParticipantId = link.Id,
                    Ip = visit.Ip,
                    UserAgent = visit.UserAgent,
                    Referrer = visit.Referrer,
                    CreatedAt = now,
                };
                clicks.Add(click);
                clickId = click.Id;
                if (visit.Ip is not null)
                {
                    repeats[(link.Id, visit.Ip)] = clickId;
                }
            }
            answers[i] = new FollowedLink(link.LandingUrl, link.AttributionWindowDays, link.Page, clickId);
        }

        if (clicks.Count > 0)
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            await BulkRows.For(db, clicks).InsertAsync("clicks", ct);
            await transaction.CommitAsync(ct);
        }
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Done.TrySetResult(answers[i]);
        }
    }

    /// <summary>
    /// The latest click of each link and address of the batch within <see cref="ShareLinks.RepeatWindow"/>: following
    /// a link again from the same address is the same visitor (a reload, a second tab), not a new friend.
    /// </summary>
    private static async Task<Dictionary<(string ParticipantId, string Ip), string>> RecentClicksAsync(ReferloopDb db, List<Job> batch,
        Dictionary<string, Link> links, DateTimeOffset now, CancellationToken ct)
    {
        var visited = batch
            .Where(j => j.Visit.Ip is not null && links.TryGetValue(j.Visit.Code, out var link) && link.Status == CampaignStatus.Active)
            .Select(j => (Link: links[j.Visit.Code], Ip: j.Visit.Ip!))
            .ToList();
        if (visited.Count == 0)
        {
            return [];
        }
        var campaignIds = visited.Select(v => v.Link.CampaignId).Distinct().ToList();
        var participantIds = visited.Select(v => v.Link.Id).ToHashSet();
        var ips = visited.Select(v => v.Ip).Distinct().ToList();
        var since = now - ShareLinks.RepeatWindow;
        // By campaign, address and time (the clicks' index); the address list goes as one parameter per value, as
        // PostgreSQL's generic plan would not search the nullable column's index with an array.
        var recent = await db.Clicks.AsNoTracking()
            .Where(c => campaignIds.Contains(c.CampaignId) && EF.MultipleParameters(ips).Contains(c.Ip!) && c.CreatedAt > since)
            .Select(c => new { c.Id, c.ParticipantId, Ip = c.Ip!, c.CreatedAt })
            .ToListAsync(ct);
        return recent
            .Where(c => participantIds.Contains(c.ParticipantId))
            .GroupBy(c => (c.ParticipantId, c.Ip))
            .ToDictionary(g => g.Key, g => g.MaxBy(c => c.CreatedAt)!.Id);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop.IsValueCreated)
        {
            await _loop.Value;
        }
    }
}
