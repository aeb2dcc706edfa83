using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Referloop.Tests.Support;

/// <summary>
/// A Referloop server on a real loopback port plus one headless Chromium (Debian's, at /usr/bin/chromium),
/// shared by the tests of one class. Pages are screenshotted to TestResults/screenshots for a human look.
/// </summary>
public class BrowserApp : ReferloopApp
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    static BrowserApp()
    {
        // Waits for a page to reach a URL are expectations, polled by the browser side: Playwright's own WaitForURLAsync
        // checks the load state and then subscribes to it, and on a busy machine the event can pass in between.
        Assertions.SetDefaultExpectTimeout(60_000);
    }

    public BrowserApp()
    {
        UseKestrel(0);
    }

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>
    /// What Chromium refused on any signed-in page of this class because of the dashboard's content security policy
    /// (an inline handler, script or style): such a refusal only shows in the console, the page just stops working.
    /// </summary>
    public ConcurrentQueue<string> PolicyViolations { get; } = new();

    public string BaseUrl => Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
        .First().Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1");

    public static string ScreenshotFolder { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["PublicUrl"] = "";
            settings["Urls"] = "http://127.0.0.1:0";
            return settings;
        }
    }

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"Browser tests need Chromium at {ChromiumPath}: apt-get install -y chromium (./test.sh does it).");
        }
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
        });
        Directory.CreateDirectory(ScreenshotFolder);
    }

    public async Task<IPage> SignedInPage()
    {
        var page = await Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        // The machines that run the suite are shared and slow at times: a first page render may take a while.
        page.SetDefaultTimeout(60_000);
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                PolicyViolations.Enqueue($"{page.Url}: {message.Text}");
            }
        };
        await page.GotoAsync($"{BaseUrl}/admin");
        await page.FillAsync("#key", AdminKey);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync($"{BaseUrl}/admin");
        await page.WaitForSelectorAsync("text=Sign out");
        return page;
    }

    public static Task Screenshot(IPage page, string name) =>
        page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, name + ".png"), FullPage = true });

    protected override async Task DisposeResourcesAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        _playwright?.Dispose();
        await base.DisposeResourcesAsync();
    }
}
