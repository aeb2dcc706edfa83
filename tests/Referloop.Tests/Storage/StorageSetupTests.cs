using Npgsql;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

/// <summary>
/// PostgreSQL connections prepare the statements they run most unless the operator's connection string says
/// otherwise: a setting given there, under any of its spellings, is left as it is.
/// </summary>
public class StorageSetupTests
{
    [Fact]
    public void A_postgres_connection_string_without_the_setting_gets_automatic_preparation()
    {
        var prepared = new NpgsqlConnectionStringBuilder(
            StorageSetup.PreparePostgres("Host=db.internal;Database=referloop;Username=referloop;Password=s3cret"));

        Assert.Equal(StorageSetup.DefaultMaxAutoPrepare, prepared.MaxAutoPrepare);
        Assert.Equal("db.internal", prepared.Host);
        Assert.Equal("referloop", prepared.Database);
        Assert.Equal("s3cret", prepared.Password);
    }

    [Theory]
    [InlineData("Host=db;Username=u;Max Auto Prepare=0", 0)]
    [InlineData("Host=db;Username=u;MaxAutoPrepare=10", 10)]
    [InlineData("Host=db;Username=u;max auto prepare=200", 200)]
    public void A_setting_the_connection_string_gives_is_kept(string connectionString, int expected)
    {
        var prepared = StorageSetup.PreparePostgres(connectionString);

        Assert.Equal(connectionString, prepared);
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(prepared).MaxAutoPrepare);
    }
}
