using System.Diagnostics;
using System.Globalization;
using System.Net;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// A <c>query</c> endpoint's signature covers the query string as sent, so the receivers of docs/webhooks.md (Node with
/// the Standard Webhooks library, Python with the standard library) accept what Referloop sent and refuse it once
/// <c>orderID</c> or <c>purchaseValue</c> is changed in the URL. The reference libraries check the timestamp against
/// their own clock: the fake clock runs at real time here.
/// </summary>
public class QuerySignatureTests(WebhookApp app) : IClassFixture<WebhookApp>, IAsyncLifetime
{
    private readonly HttpClient _client = app.CreateAdminClient();
    private string? _endpointId;

    public Task InitializeAsync()
    {
        if (app.Clock.GetUtcNow() < DateTimeOffset.UtcNow)
        {
            app.Clock.SetUtcNow(DateTimeOffset.UtcNow);
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_endpointId is not null)
        {
            await _client.DeleteAsync($"/api/v1/webhook-endpoints/{_endpointId}");
        }
    }

    /// <summary>A conversion as a query endpoint receives it, and the endpoint's secret.</summary>
    private async Task<(ReceivedRequest Request, string Secret)> ReceiveConversion(Receiver receiver)
    {
        var created = await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/callback?token=abc"), format = "query", eventTypes = new[] { "conversion" } });
        _endpointId = (string)created["id"]!;
        await app.Publish(EventTypes.Conversion);
        return (await receiver.WaitForAsync(1), (string)created["secret"]!);
    }

    [Fact]
    public async Task The_signature_covers_the_query_string_so_a_changed_order_or_value_fails_in_csharp_and_node()
    {
        await using var receiver = await Receiver.StartAsync();
        var (request, secret) = await ReceiveConversion(receiver);

        Assert.Contains("orderID=ORD-1001", request.Query);
        var timestamp = long.Parse(request.Header("webhook-timestamp"), CultureInfo.InvariantCulture);
        Assert.Equal(WebhookSignature.Sign(secret, request.Header("webhook-id"), timestamp, request.Query[1..]),
            request.Header("webhook-signature"));
        Assert.True((bool)(await Node.Verify(secret, request))["ok"]!);
        foreach (var tampered in Tampered(request))
        {
            Assert.False((bool)(await Node.Verify(secret, tampered))["ok"]!, tampered.Query);
            Assert.NotEqual(WebhookSignature.Sign(secret, request.Header("webhook-id"), timestamp, tampered.Query[1..]),
                request.Header("webhook-signature"));
        }
    }

    [Fact]
    public async Task The_node_receiver_of_the_docs_accepts_the_request_as_sent_and_refuses_it_altered()
    {
        await using var receiver = await Receiver.StartAsync();
        var (request, secret) = await ReceiveConversion(receiver);
        using var node = await ScriptReceiver.StartAsync("node", "query-receiver.js", Node.Folder, secret);

        await AssertAcceptedOnlyAsSent(node.Port, request);
    }

    [Fact]
    public async Task The_python_receiver_of_the_docs_accepts_the_request_as_sent_and_refuses_it_altered()
    {
        if (!ScriptReceiver.OnPath("python3"))
        {
            // The C# and Node checks above still run; the Python one needs python3 on the test machine.
            return;
        }
        await using var receiver = await Receiver.StartAsync();
        var (request, secret) = await ReceiveConversion(receiver);
        using var python = await ScriptReceiver.StartAsync("python3", "query_receiver.py", ScriptReceiver.PythonFolder, secret);

        await AssertAcceptedOnlyAsSent(python.Port, request);
    }

    /// <summary>Sends the received request again to another receiver: as it was (204), then altered (401).</summary>
    private static async Task AssertAcceptedOnlyAsSent(int port, ReceivedRequest request)
    {
        using var http = new HttpClient();
        var asSent = await http.SendAsync(Resend(port, request));
        Assert.Equal(HttpStatusCode.NoContent, asSent.StatusCode);
        Assert.Equal("ORD-1001", asSent.Headers.GetValues("X-Order-Id").Single());
        foreach (var tampered in Tampered(request))
        {
            var refused = await http.SendAsync(Resend(port, tampered));
            Assert.True(refused.StatusCode == HttpStatusCode.Unauthorized, $"{tampered.Query} was answered {refused.StatusCode}");
        }
    }

    private static IEnumerable<ReceivedRequest> Tampered(ReceivedRequest request)
    {
        yield return request with { Query = request.Query.Replace("orderID=ORD-1001", "orderID=ORD-9999", StringComparison.Ordinal) };
        yield return request with { Query = request.Query.Replace("purchaseValue=120.50", "purchaseValue=999.00", StringComparison.Ordinal) };
        // Moving a parameter changes nothing a parser sees, but the string signed is the string sent.
        yield return request with { Query = request.Query.Replace("?token=abc&", "?", StringComparison.Ordinal) + "&token=abc" };
    }

    private static HttpRequestMessage Resend(int port, ReceivedRequest request)
    {
        var message = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}{request.Path}{request.Query}");
        foreach (var name in new[] { "webhook-id", "webhook-timestamp", "webhook-signature" })
        {
            message.Headers.TryAddWithoutValidation(name, request.Header(name));
        }
        return message;
    }
}

/// <summary>A receiver script (Node or Python) run on a free loopback port with the endpoint's secret.</summary>
public sealed class ScriptReceiver : IDisposable
{
    private readonly Process _process;

    private ScriptReceiver(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static string PythonFolder { get; } = Path.Combine(Directory.GetParent(Node.Folder)!.FullName, "python");

    public static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, program)));

    public static async Task<ScriptReceiver> StartAsync(string program, string script, string folder, string secret)
    {
        var port = Node.FreePort();
        var start = new ProcessStartInfo(program, script)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["PORT"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["REFERLOOP_WEBHOOK_SECRET"] = secret;
        var process = Process.Start(start)!;
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(line == $"Listening on port {port}", $"{program} {script} printed '{line}': {await ReadErrorAsync(process)}");
        return new ScriptReceiver(process, port);
    }

    private static async Task<string> ReadErrorAsync(Process process)
    {
        if (!process.HasExited)
        {
            return "";
        }
        return await process.StandardError.ReadToEndAsync();
    }

    public void Dispose()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
    }
}
