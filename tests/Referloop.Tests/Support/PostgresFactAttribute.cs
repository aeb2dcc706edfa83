namespace Referloop.Tests.Support;

/// <summary>
/// A test of what happens between concurrent transactions that hold row locks: PostgreSQL only (SQLite runs one write
/// transaction at a time, so the situation cannot arise there). test.sh runs the suite on both.
/// </summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (!ReferloopApp.OnPostgres)
        {
            Skip = "row locks between transactions: PostgreSQL only (REFERLOOP_TEST_DB=postgres)";
        }
    }
}
