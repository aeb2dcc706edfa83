using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Referloop.Storage;

/// <summary>
/// PostgreSQL: gathers the statistics of a table that has grown from empty once it holds
/// <see cref="RowsBeforeFirstAnalyze"/> rows, instead of when autovacuum first comes round (a minute or more into a new
/// database's first load). Until then the planner has only guesses, and the generic plans PostgreSQL keeps for prepared
/// statements are made on them: the event loop's read of earlier events by order id searched the campaign's index and
/// filtered every event of the campaign, for every batch, at a third of the events per second of an analysed
/// database. It looks every <see cref="Interval"/> during the process's first <see cref="Watch"/>, and stops once every
/// table has statistics; autovacuum keeps them up to date from then on.
/// </summary>
internal sealed class PostgresStatistics(IServiceScopeFactory scopes, TimeProvider clock, ILogger<PostgresStatistics> log)
    : BackgroundService
{
    public const int RowsBeforeFirstAnalyze = 500;
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Watch = TimeSpan.FromHours(1);

    /// <summary>
    /// Tables analysed once already: a user that does not own a table gets a warning from PostgreSQL instead of its
    /// statistics, and is not to repeat it every few seconds.
    /// </summary>
    private readonly HashSet<string> _analysed = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var until = clock.GetUtcNow() + Watch;
        try
        {
            // Bounded by the hour whether the looks succeed or fail (a user who may not read the statistics views). A
            // delay after each look, not a periodic timer, which owes every period a jump of the clock skipped.
            while (clock.GetUtcNow() < until)
            {
                await Task.Delay(Interval, clock, stoppingToken);
                try
                {
                    var (_, waiting) = await AnalyzeGrownAsync(stoppingToken);
                    if (waiting == 0)
                    {
                        return;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning(e, "Looking for tables without statistics failed; trying again in {Interval}", Interval);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Analyses the tables of the model that have no statistics yet and hold at least <see cref="RowsBeforeFirstAnalyze"/>
    /// rows, each once; returns them, and how many tables are left without statistics that it has not analysed.
    /// </summary>
    public async Task<(IReadOnlyList<string> Analysed, int Waiting)> AnalyzeGrownAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var tables = db.Model.GetEntityTypes().Select(type => type.GetTableName()).OfType<string>().Distinct().ToArray();
        var withoutStatistics = await db.Database.SqlQueryRaw<string>("""
            SELECT t AS "Value"
            FROM unnest(@tables) AS t
            JOIN pg_stat_user_tables AS s ON s.relid = to_regclass(quote_ident(t))
            WHERE s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
            """, new NpgsqlParameter("tables", tables)).ToListAsync(ct);
        var analysed = new List<string>();
        var waiting = 0;
        foreach (var table in withoutStatistics.Where(table => !_analysed.Contains(table)))
        {
            // Counting stops at the threshold: cheap whatever the table has grown to.
            var count = $"""SELECT count(*)::int AS "Value" FROM (SELECT 1 FROM "{table}" LIMIT {RowsBeforeFirstAnalyze}) AS grown""";
            if (await db.Database.SqlQueryRaw<int>(count).SingleAsync(ct) < RowsBeforeFirstAnalyze)
            {
                waiting++;
                continue;
            }
            var analyze = $"""ANALYZE "{table}" """;
            await db.Database.ExecuteSqlRawAsync(analyze, ct);
            _analysed.Add(table);
            analysed.Add(table);
        }
        if (analysed.Count > 0)
        {
            log.LogInformation("Gathered the first statistics of {Tables}", string.Join(", ", analysed));
        }
        return (analysed, waiting);
    }
}
