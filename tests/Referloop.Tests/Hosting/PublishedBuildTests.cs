using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Hosting;

/// <summary>
/// <c>dotnet publish src/Referloop -c Release -o &lt;folder&gt;</c>, the command the Dockerfile runs, once for the
/// class. The folder is what a deployment copies (or the image holds).
/// </summary>
public sealed class PublishedBuild : IAsyncLifetime
{
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"referloop_publish_{Guid.NewGuid():N}");

    public string Assembly => Path.Combine(Folder, "Referloop.dll");

    /// <summary>The repository, found above the test's own build folder.</summary>
    public static string Repository
    {
        get
        {
            for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
            {
                if (File.Exists(Path.Combine(folder.FullName, "src", "Referloop", "Referloop.csproj")))
                {
                    return folder.FullName;
                }
            }
            throw new DirectoryNotFoundException($"no src/Referloop/Referloop.csproj above {AppContext.BaseDirectory}");
        }
    }

    public async Task InitializeAsync()
    {
        // The configuration this test run was built with (Release in test.sh), so that publish finds the build up to
        // date instead of compiling the server again.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var publish = new ProcessStartInfo("dotnet")
        {
            // --disable-build-servers: no MSBuild or compiler server is left running after the test.
            ArgumentList = { "publish", "src/Referloop", "-c", configuration, "-o", Folder, "--disable-build-servers" },
            WorkingDirectory = Repository,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(publish)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"dotnet publish failed ({process.ExitCode}):\n{await output}\n{await errors}");
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// The published folder started as the container's entry point starts it (<c>dotnet Referloop.dll</c>, in
/// <c>Production</c>), from a working directory of its own, with nothing of the source tree in reach: outside
/// Development the server does not look for the GeoIP database the build installed there.
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class PublishedBuildTests(PublishedBuild build) : IClassFixture<PublishedBuild>
{
    private ServerLaunch Production(string workingDirectory) => new(build.Assembly, workingDirectory,
        new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });

    private static readonly Dictionary<string, string> Settings = new()
    {
        ["PublicUrl"] = "http://127.0.0.1:{port}",
    };

    private static string NewWorkingDirectory()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"referloop_cwd_{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    [Fact]
    public async Task The_published_folder_serves_the_dashboard_styles_the_scripts_and_locates_ips()
    {
        var workingDirectory = NewWorkingDirectory();
        try
        {
            await using var database = await ProcessDatabase.CreateAsync();
            await using var server = await ServerProcess.StartAsync(database, Settings, Production(workingDirectory));
            using var client = server.CreateAdminClient();

            var stylesheet = await client.GetAsync("/admin/admin.css");
            Assert.Equal(HttpStatusCode.OK, stylesheet.StatusCode);
            Assert.Equal("text/css", stylesheet.Content.Headers.ContentType?.MediaType);
            Assert.Contains("body", await stylesheet.Content.ReadAsStringAsync());
            foreach (var script in new[] { "/js/referloop.js", "/js/social-proof.js", "/admin/admin.js" })
            {
                var response = await client.GetAsync(script);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.True((await response.Content.ReadAsStringAsync()).Length > 500, $"{script} is (almost) empty");
            }

            var campaign = await client.CreateCampaign();
            var hook = await client.CreateHook(campaign, "stream");
            Assert.StartsWith(server.BaseAddress.ToString().TrimEnd('/'), hook.Url);
            var posted = await client.PostJson(hook.Path, """{"email": "ann@example.com", "ip": "8.8.8.8"}""");
            posted.EnsureStatus(HttpStatusCode.OK);
            var item = (await posted.ReadJson())["result"]!["item"]!;
            Assert.Equal("US", (string?)item["countryCode"]);

            var ready = await client.GetOk("/health/ready");
            Assert.Equal("Healthy", (string?)ready["status"]);
            Assert.Equal($"loaded from {Path.Combine(build.Folder, "geoip")}", (string?)ready["checks"]!["geoip"]!["description"]);

            // The image's HEALTHCHECK: the server asks itself, on the port the platform gave it.
            var (healthy, output) = await RunAsync(["--health-check"], new() { ["ASPNETCORE_URLS"] = server.BaseAddress.ToString() });
            Assert.True(healthy == 0, output);
            var (down, _) = await RunAsync(["--health-check", "http://127.0.0.1:9/health/ready"], []);
            Assert.Equal(1, down);
        }
        finally
        {
            Directory.Delete(workingDirectory, recursive: true);
        }
    }

    /// <summary>Runs the published server with <paramref name="args"/> to its end: its exit code and what it wrote.</summary>
    private async Task<(int ExitCode, string Output)> RunAsync(string[] args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetTempPath(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(build.Assembly);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet Referloop.dll {string.Join(' ', args)} did not exit within 60 s:\n{await output}\n{await errors}");
        }
        return (process.ExitCode, await output + await errors);
    }

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "Referloop__Database__Provider", "mysql", "Database:Provider is 'mysql'; use 'sqlite' (the default) or 'postgres'." },
        { "Referloop__ConnectionStrings__Referloop", "Data Source=x.db;Colour=blue", "ConnectionStrings:Referloop is not a valid sqlite connection string" },
        { "Referloop__PublicUrl", "refer.shop.example", "PublicUrl" },
        { "ASPNETCORE_URLS", "localhost:8080", "Urls (or ASPNETCORE_URLS, --urls) contains 'localhost:8080'" },
        { "Referloop__Metrics__Prometheus", "yes", "Metrics:Prometheus is 'yes'; use true or false." },
        { "Referloop__DataProtection__CertificatePath", "/nonexistent/dp.pfx", "DataProtection:CertificatePath '/nonexistent/dp.pfx' cannot be read" },
        { "Referloop__RateLimits__ShareLinksPerIpPerMinute", "0", "RateLimits:ShareLinksPerIpPerMinute is '0'; use a whole number of at least 1." },
        { "Referloop__InboundHooks__RateLimit__Permits", "many", "InboundHooks:RateLimit:Permits is 'many'; use a whole number of at least 1." },
        { "REFERLOOP_ADMIN_KEY", "short", "REFERLOOP_ADMIN_KEY must be at least 20 characters long." },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task A_bad_setting_stops_the_start_with_a_message_naming_it(string variable, string value, string message)
    {
        var (exitCode, output) = await RunAsync([], new()
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:0",
            ["Referloop__PublicUrl"] = "https://refer.shop.example",
            ["Referloop__ConnectionStrings__Referloop"] = $"Data Source={Path.Combine(Path.GetTempPath(), $"referloop_never_{Guid.NewGuid():N}.db")}",
            [variable] = value,
        });

        Assert.True(exitCode != 0, output);
        Assert.Contains(message, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task An_unreachable_database_stops_the_start_with_a_message_naming_it_without_its_password()
    {
        var (exitCode, output) = await RunAsync([], new()
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:0",
            ["Referloop__PublicUrl"] = "https://refer.shop.example",
            ["Referloop__Database__Provider"] = "postgres",
            // Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
            ["Referloop__ConnectionStrings__Referloop"] = "Host=127.0.0.1;Port=9;Database=referloop;Username=referloop;Password=s3cret-pw",
        });

        Assert.Equal(1, exitCode);
        Assert.Contains("cannot start: the database referloop on 127.0.0.1:9", output);
        Assert.DoesNotContain("s3cret-pw", output);
    }

    [Fact]
    public void The_image_builds_with_this_publish_command_and_starts_the_way_these_tests_start_it()
    {
        var dockerfile = File.ReadAllText(Path.Combine(PublishedBuild.Repository, "Dockerfile"));
        Assert.Contains("RUN dotnet publish src/Referloop -c Release -o /app", dockerfile);
        Assert.Contains("""ENTRYPOINT ["dotnet", "Referloop.dll"]""", dockerfile);
        Assert.Contains("""CMD ["dotnet", "Referloop.dll", "--health-check"]""", dockerfile);
        Assert.Contains("USER $APP_UID", dockerfile);
        Assert.Contains("VOLUME /app/data", dockerfile);

        var compose = File.ReadAllText(Path.Combine(PublishedBuild.Repository, "compose.yaml"));
        Assert.Contains("condition: service_healthy", compose);
        Assert.Contains("Database__Provider: postgres", compose);
        Assert.Contains("PublicUrl:", compose);
    }

    [Fact]
    public async Task Without_the_geoip_database_start_warns_once_naming_the_setting_and_readiness_is_degraded_but_up()
    {
        var workingDirectory = NewWorkingDirectory();
        try
        {
            await using var database = await ProcessDatabase.CreateAsync();
            var missing = Path.Combine(workingDirectory, "no-geoip-here");
            await using var server = await ServerProcess.StartAsync(database,
                new Dictionary<string, string>(Settings) { ["SocialProof:GeoIpDatabase"] = missing }, Production(workingDirectory));
            using var client = server.CreateAdminClient();

            var response = await client.GetAsync("/health/ready");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var ready = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("Degraded", (string?)ready["status"]);
            Assert.Equal("Healthy", (string?)ready["checks"]!["database"]!["status"]);
            var geoIp = ready["checks"]!["geoip"]!;
            Assert.Equal("Degraded", (string?)geoIp["status"]);
            Assert.Contains("SocialProof:GeoIpDatabase", (string?)geoIp["description"]);
            Assert.Contains(missing, (string?)geoIp["description"]);

            var warnings = server.Output.Split('\n').Where(line => line.Contains("No GeoIP database")).ToList();
            Assert.Single(warnings);
            Assert.Contains("SocialProof:GeoIpDatabase", warnings[0]);
        }
        finally
        {
            Directory.Delete(workingDirectory, recursive: true);
        }
    }
}
