using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Storage;

namespace Referloop.Campaigns;

/// <summary>
/// The campaigns that events name, by id and by publishable key, so that an event does not read its campaign again:
/// at a thousand events a second that read was about a tenth of the server's CPU. A campaign changed through this
/// instance is dropped when the change is saved (<see cref="Invalidation"/>); a change made through another instance
/// is seen here within <c>Campaigns:CacheSeconds</c> (1 s), the time an entry is kept. Only campaigns that exist are
/// kept, so unknown ids and keys cannot fill it. The objects are shared by every request that finds them: read only.
/// </summary>
public sealed class CampaignCache(TimeProvider clock, IConfiguration configuration)
{
    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Campaign?>> ById =
        EF.CompileAsyncQuery((ReferloopDb db, string id, CancellationToken ct) => db.Campaigns.AsNoTracking().FirstOrDefault(c => c.Id == id));

    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Campaign?>> ByKey =
        EF.CompileAsyncQuery((ReferloopDb db, string key, CancellationToken ct) =>
            db.Campaigns.AsNoTracking().FirstOrDefault(c => c.PublishableKey == key));

    private readonly ConcurrentDictionary<(bool ByKey, string Value), Entry> _entries = new();

    private readonly TimeSpan _keep = TimeSpan.FromSeconds(
        configuration.GetValue<double?>("Campaigns:CacheSeconds") is double seconds and >= 0 ? seconds : 1);

    private sealed record Entry(Campaign Campaign, DateTimeOffset Until);

    public Task<Campaign?> FindAsync(ReferloopDb db, string id, CancellationToken ct) => FindAsync(db, false, id, ById, ct);

    public Task<Campaign?> FindByPublishableKeyAsync(ReferloopDb db, string key, CancellationToken ct) => FindAsync(db, true, key, ByKey, ct);

    private async Task<Campaign?> FindAsync(ReferloopDb db, bool byKey, string value,
        Func<ReferloopDb, string, CancellationToken, Task<Campaign?>> read, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (_entries.TryGetValue((byKey, value), out var entry) && entry.Until > now)
        {
            return entry.Campaign;
        }
        var campaign = await read(db, value, ct);
        if (campaign is not null && _keep > TimeSpan.Zero)
        {
            _entries[(byKey, value)] = new Entry(campaign, now + _keep);
        }
        return campaign;
    }

    /// <summary>Forgets every campaign: the next event of each reads it again.</summary>
    public void Clear() => _entries.Clear();

    /// <summary>
    /// Clears the cache when a save may write a campaign (its context tracks one): before the save, and again after it,
    /// so that a request that read the campaign while the save was under way does not keep what it read. Campaigns
    /// are only tracked where they are edited, so other saves, the engine's among them, leave the cache alone.
    /// </summary>
    public sealed class Invalidation(CampaignCache cache) : SaveChangesInterceptor
    {
        public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
        {
            ClearIfTracked(eventData.Context);
            return result;
        }

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData,
            InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            ClearIfTracked(eventData.Context);
            return ValueTask.FromResult(result);
        }

        public override int SavedChanges(SaveChangesCompletedEventData eventData, int result)
        {
            ClearIfTracked(eventData.Context);
            return result;
        }

        public override ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result,
            CancellationToken cancellationToken = default)
        {
            ClearIfTracked(eventData.Context);
            return ValueTask.FromResult(result);
        }

        // Looks at what is tracked without detecting changes first: the save detects them itself, once.
        private void ClearIfTracked(DbContext? context)
        {
            if (context is null)
            {
                return;
            }
            var tracker = context.ChangeTracker;
            var detect = tracker.AutoDetectChangesEnabled;
            tracker.AutoDetectChangesEnabled = false;
            try
            {
                if (tracker.Entries<Campaign>().Any())
                {
                    cache.Clear();
                }
            }
            finally
            {
                tracker.AutoDetectChangesEnabled = detect;
            }
        }
    }
}
