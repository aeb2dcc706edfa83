using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Tests that start real server processes: they run alone, after the parallel classes, so that their timing does
/// not depend on what else shares the two cores, and no other class waits behind them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServerProcessCollection
{
    public const string Name = "Server processes";
}

/// <summary>
/// A database for server processes started by a test: a SQLite file, or a fresh PostgreSQL database when
/// REFERLOOP_TEST_DB=postgres (same server as <see cref="ReferloopApp"/>). Deleted or dropped on dispose.
/// </summary>
public sealed class ProcessDatabase : IAsyncDisposable
{
    private readonly string _name = $"referloop_test_{Guid.NewGuid():N}";
    private readonly ServiceProvider _services;

    private ProcessDatabase()
    {
        ConnectionString = ReferloopApp.OnPostgres
            ? new NpgsqlConnectionStringBuilder(PostgresServer) { Database = _name, MaxPoolSize = 30 }.ToString()
            : $"Data Source={SqlitePath}";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:Provider"] = Provider,
            ["ConnectionStrings:Referloop"] = ConnectionString,
        }).Build();
        // The test's own view of the database, built exactly as the server builds its own.
        _services = new ServiceCollection().AddReferloopStorage(configuration).BuildServiceProvider();
    }

    public string Provider => ReferloopApp.OnPostgres ? "postgres" : "sqlite";

    public string ConnectionString { get; }

    private string SqlitePath => Path.Combine(Path.GetTempPath(), _name + ".db");

    private static string PostgresServer => new NpgsqlConnectionStringBuilder(
        Environment.GetEnvironmentVariable("REFERLOOP_TEST_PG") ?? "Host=localhost;Username=referloop_test;Password=referloop_test")
    {
        Database = "postgres",
    }.ToString();

    /// <summary>An empty database; the first server process started on it creates the schema.</summary>
    public static async Task<ProcessDatabase> CreateAsync()
    {
        var database = new ProcessDatabase();
        if (ReferloopApp.OnPostgres)
        {
            await using var connection = new NpgsqlConnection(PostgresServer);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database._name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        return database;
    }

    public async Task<T> WithDb<T>(Func<ReferloopDb, Task<T>> work)
    {
        await using var scope = _services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<ReferloopDb>());
    }

    /// <summary>
    /// Writes <paramref name="count"/> messages <c>{"sequence": i}</c> straight into the outbox with
    /// <see cref="Outbox.Add"/>, as a business transaction of the server would, and returns their ids by sequence.
    /// Not through the API: none publishes arbitrary events, and 10,000 requests through the referral flow would
    /// trickle in over many seconds instead of being queued, claimed and on the wire all at once. One transaction:
    /// on SQLite a writer from another process gets the lock only now and then while a server delivers. The
    /// servers find the messages by polling, as they find another instance's.
    /// </summary>
    public Task<string[]> PublishAsync(int count) => WithDb(async db =>
    {
        var now = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, count)
            .Select(sequence => Outbox.Add(db, EventTypes.ReferralCreated, null, new { sequence }, now).Id)
            .ToArray();
        await db.SaveChangesAsync();
        return ids;
    });

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        if (ReferloopApp.OnPostgres)
        {
            NpgsqlConnection.ClearAllPools();
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(PostgresServer);
                    await connection.OpenAsync();
                    // FORCE: a killed server's sessions may not be gone from PostgreSQL yet.
                    await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_name}\" WITH (FORCE)", connection);
                    await drop.ExecuteNonQueryAsync();
                    return;
                }
                catch (PostgresException e) when (attempt < 5)
                {
                    Console.Error.WriteLine($"dropping {_name} failed ({e.SqlState}: {e.MessageText}); trying again");
                    await Task.Delay(500 * attempt);
                }
            }
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(SqlitePath + suffix);
        }
    }
}

/// <summary>
/// The built server (<c>dotnet Referloop.dll</c>) as a separate OS process on a free loopback port, configured
/// through <c>Referloop__…</c> environment variables, with the system clock. <see cref="Kill"/> is SIGKILL: no
/// shutdown code runs. Disposing kills it if it still runs, and so does the end of the test run.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<ServerProcess, bool> Running = new();
    private static readonly Lazy<string> Assembly = new(FindServerAssembly);

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    static ServerProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var server in Running.Keys)
        {
            server.KillNow();
        }
    };

    private ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public int Id => _process.Id;

    public TimeSpan ProcessorTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>The last lines the server wrote, for failure messages.</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>
    /// Starts a server on <paramref name="database"/> and waits until it answers; <paramref name="settings"/> as
    /// configuration keys (<c>Webhooks:ClaimLease</c>); <paramref name="launch"/> for another build (a published folder).
    /// </summary>
    public static async Task<ServerProcess> StartAsync(ProcessDatabase database, IDictionary<string, string>? settings = null,
        ServerLaunch? launch = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var server = Launch(database, settings ?? new Dictionary<string, string>(), launch ?? ServerLaunch.Build);
            try
            {
                await server.WaitUntilLiveAsync(TimeSpan.FromSeconds(180));
                return server;
            }
            catch (ServerExitedException) when (attempt < 3)
            {
                // Most likely the free port was taken by someone else between choosing and binding it.
                await server.DisposeAsync();
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>
    /// Starts a server that is expected not to come up, and returns its exit code and what it wrote once it has
    /// exited (failing the test if it is still running after <paramref name="limit"/>).
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(ProcessDatabase database,
        IDictionary<string, string> settings, TimeSpan limit)
    {
        await using var server = Launch(database, settings, ServerLaunch.Build);
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await server._process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the server still ran after {limit.TotalSeconds} s:\n{server.Output}");
        }
        // The exit can be seen before the last lines of its output have been read.
        server._process.WaitForExit();
        return (server._process.ExitCode, server.Output);
    }

    private static ServerProcess Launch(ProcessDatabase database, IDictionary<string, string> settings, ServerLaunch launch)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { launch.Assembly ?? Assembly.Value },
            // Relative paths (./data) must not land in the repository.
            WorkingDirectory = launch.WorkingDirectory ?? Path.GetTempPath(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The platform's own variable, as a container sets ASPNETCORE_HTTP_PORTS: the settings must not override it.
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        var environment = new Dictionary<string, string>
        {
            ["Database:Provider"] = database.Provider,
            ["ConnectionStrings:Referloop"] = database.ConnectionString,
            ["Webhooks:AllowPrivateNetworks"] = "true",
            ["PublicUrl"] = "http://referloop.test",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings)
        {
            environment[key] = value.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        foreach (var (key, value) in environment)
        {
            start.Environment["Referloop__" + key.Replace(":", "__")] = value;
        }
        start.Environment["REFERLOOP_ADMIN_KEY"] = ReferloopApp.AdminKey;
        // As deployed, whatever the environment the tests themselves run in.
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (name, value) in launch.Environment)
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var server = new ServerProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, line) => server.Remember(line.Data);
        process.ErrorDataReceived += (_, line) => server.Remember(line.Data);
        process.Start();
        Running[server] = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        while (_output.Count > 200 && _output.TryDequeue(out _))
        {
        }
    }

    private async Task WaitUntilLiveAsync(TimeSpan limit)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            if (_process.HasExited)
            {
                throw new ServerExitedException($"the server exited with {_process.ExitCode} before it answered:\n{Output}");
            }
            try
            {
                using var response = await http.GetAsync("/health/ready");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet (migrations run first).
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the server did not answer within {limit.TotalSeconds} s:\n{Output}");
            }
            await Task.Delay(100);
        }
    }

    public HttpClient CreateAdminClient()
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ReferloopApp.AdminKey);
        return client;
    }

    /// <summary>SIGKILL, and waits until the process is gone.</summary>
    public async Task Kill()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        Running.TryRemove(this, out _);
    }

    /// <summary>SIGTERM, as systemd and docker stop send it; waits until the process is gone and returns its exit code.</summary>
    public async Task<int> Terminate(TimeSpan limit)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        using var timeout = new CancellationTokenSource(limit);
        await _process.WaitForExitAsync(timeout.Token);
        Running.TryRemove(this, out _);
        return _process.ExitCode;
    }

    private void KillNow()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
    }

    public ValueTask DisposeAsync()
    {
        KillNow();
        Running.TryRemove(this, out _);
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// <c>src/Referloop/bin/&lt;configuration&gt;/&lt;tfm&gt;/Referloop.dll</c>, built with this test project (it references
    /// the server): the same configuration and target framework as the tests themselves, else the newest build.
    /// </summary>
    private static string FindServerAssembly()
    {
        var tests = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = tests.Name;
        var configuration = tests.Parent?.Name;
        for (var folder = tests; folder is not null; folder = folder.Parent)
        {
            var bin = Path.Combine(folder.FullName, "src", "Referloop", "bin");
            if (!Directory.Exists(bin))
            {
                continue;
            }
            var builds = Directory.GetDirectories(bin)
                .Select(config => Path.Combine(config, framework, "Referloop.dll"))
                .Where(dll => File.Exists(dll) && File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json")))
                .OrderByDescending(dll => Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(dll))) == configuration)
                .ThenByDescending(File.GetLastWriteTimeUtc)
                .ToList();
            if (builds.Count > 0)
            {
                return builds[0];
            }
        }
        throw new FileNotFoundException($"no built Referloop.dll for {framework} under src/Referloop/bin above {tests.FullName}");
    }

    private sealed class ServerExitedException(string message) : Exception(message);
}

/// <summary>
/// Which server to start and how: <paramref name="Assembly"/> (default: the build of this test run), the working
/// directory (default: the temporary folder) and plain environment variables (<c>ASPNETCORE_ENVIRONMENT</c>).
/// Settings may name the server's port as <c>{port}</c> (<c>PublicUrl=http://127.0.0.1:{port}</c>).
/// </summary>
public sealed record ServerLaunch(string? Assembly, string? WorkingDirectory, IReadOnlyDictionary<string, string> Environment)
{
    public static ServerLaunch Build { get; } = new(null, null, new Dictionary<string, string>());
}

public static class Eventually
{
    /// <summary>Polls (real time) until <paramref name="done"/>; fails with <paramref name="failure"/> after <paramref name="limit"/>.</summary>
    public static async Task TrueAsync(Func<Task<bool>> done, TimeSpan limit, Func<string> failure)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!await done())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"not within {limit.TotalSeconds} s: {failure()}");
            }
            // Not too often: the look itself costs the servers under test a share of the database.
            await Task.Delay(250);
        }
    }
}
