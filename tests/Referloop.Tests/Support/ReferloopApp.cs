using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Referloop.Storage;

namespace Referloop.Tests.Support;

/// <summary>
/// One Referloop server on its own fresh database, shared by the tests of one class (IClassFixture).
/// The database is SQLite unless REFERLOOP_TEST_DB=postgres, in which case a new database is created on the
/// server named by REFERLOOP_TEST_PG and dropped afterwards. Time is a <see cref="FakeTimeProvider"/>.
/// </summary>
public class ReferloopApp : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string AdminKey = "rl_admin_test_0123456789abcdefghijklmnop";

    private readonly string _databaseName = $"referloop_test_{Guid.NewGuid():N}";
    private readonly string _sqlitePath;

    public ReferloopApp()
    {
        _sqlitePath = Path.Combine(Path.GetTempPath(), _databaseName + ".db");
    }

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));

    public static bool OnPostgres => string.Equals(Environment.GetEnvironmentVariable("REFERLOOP_TEST_DB"), "postgres",
        StringComparison.OrdinalIgnoreCase);

    /// <summary>The maintenance database of the test server, used to create and drop each class's database.</summary>
    private static string PostgresServer => new NpgsqlConnectionStringBuilder(
        Environment.GetEnvironmentVariable("REFERLOOP_TEST_PG") ?? "Host=localhost;Username=referloop_test;Password=referloop_test")
    {
        Database = "postgres",
    }.ToString();

    protected string ConnectionString => OnPostgres
        // Test classes run in parallel against one server: a small pool each keeps them under max_connections.
        ? new NpgsqlConnectionStringBuilder(PostgresServer) { Database = _databaseName, MaxPoolSize = 20 }.ToString()
        : $"Data Source={_sqlitePath}";

    /// <summary>Extra settings a test class needs; override and add to the base.</summary>
    protected virtual IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Database:Provider"] = OnPostgres ? "postgres" : "sqlite",
        ["ConnectionStrings:Referloop"] = ConnectionString,
        ["REFERLOOP_ADMIN_KEY"] = AdminKey,
        ["PublicUrl"] = "http://referloop.test",
        // Every test request comes from one address unless it sends ClientAddress.Header: the suite would trip the
        // per-address limits of the public routes. Their own tests set them low again.
        ["RateLimits:BrowserEventsPerIpPerMinute"] = "100000",
        ["RateLimits:BrowserEventsPerKeyPerMinute"] = "100000",
        ["RateLimits:ShareLinksPerIpPerMinute"] = "100000",
        // Tests move the clock by weeks: the retention sweep would empty the bodies of messages they still read. Its
        // own tests run it directly (RetentionSweep.PurgeAsync).
        ["Retention:SweepIntervalMinutes"] = "0",
        // Tests read what a change raised from the message log, mostly without an endpoint; UntakenMessagesTests run
        // the default, which stores only the messages somebody takes.
        ["Webhooks:KeepUntakenMessages"] = "true",
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in Settings)
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Clock);
            services.AddSingleton<IStartupFilter, ClientAddress>();
        });
    }

    public HttpClient CreateAdminClient()
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return client;
    }

    public HttpClient CreateAnonymousClient() =>
        CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });

    /// <summary>Runs <paramref name="work"/> with a database context of the running server.</summary>
    public async Task<T> WithDb<T>(Func<ReferloopDb, Task<T>> work)
    {
        await using var scope = Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<ReferloopDb>());
    }

    public virtual async Task InitializeAsync()
    {
        if (OnPostgres)
        {
            await using var connection = new NpgsqlConnection(PostgresServer);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_databaseName}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        StartServer(); // start the host (runs migrations) before the first test
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeResourcesAsync();

    /// <summary>Stops the server and drops its database.</summary>
    protected virtual async Task DisposeResourcesAsync()
    {
        await DisposeAsync();
        if (OnPostgres)
        {
            NpgsqlConnection.ClearAllPools();
            // A connection that is still being opened while the database is dropped can make one DROP fail
            // (55006, "being accessed by other users"); FORCE ends it on the next try.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(PostgresServer);
                    await connection.OpenAsync();
                    await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_databaseName}\" WITH (FORCE)", connection);
                    await drop.ExecuteNonQueryAsync();
                    break;
                }
                catch (PostgresException e) when (attempt < 5)
                {
                    Console.Error.WriteLine($"dropping {_databaseName} failed ({e.SqlState}: {e.MessageText}); trying again");
                    await Task.Delay(500 * attempt);
                }
            }
        }
        else
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(_sqlitePath + suffix);
            }
        }
    }
}
