using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Referloop.Storage;

// Used only by 'dotnet ef migrations add' to build each provider's model; the server never calls these.
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteReferloopDb>
{
    public SqliteReferloopDb CreateDbContext(string[] args) => new(new DbContextOptionsBuilder<SqliteReferloopDb>()
        .UseSqlite("Data Source=design.db", sqlite => sqlite.MigrationsHistoryTable("__migrations")).Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresReferloopDb>
{
    public PostgresReferloopDb CreateDbContext(string[] args) => new(new DbContextOptionsBuilder<PostgresReferloopDb>()
        .UseNpgsql("Host=localhost", npgsql => npgsql.MigrationsHistoryTable("__migrations")).Options);
}
