using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Referloop.Tests.Webhooks;

/// <summary>Runs the Node reference receivers of tests/node (installed by <c>npm ci --prefix tests/node</c>).</summary>
public static class Node
{
    public static string Folder { get; } = FindFolder();

    private static string FindFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                Assert.True(Directory.Exists(Path.Combine(candidate, "node_modules")),
                    "tests/node/node_modules is missing: run 'npm ci --prefix tests/node' (test.sh does).");
                return candidate;
            }
        }
        throw new InvalidOperationException("tests/node not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Verifies a received request with the npm <c>standardwebhooks</c> library; returns its answer.</summary>
    public static Task<JsonObject> Verify(string secret, ReceivedRequest request) => RunScript("verify.js",
        JsonSerializer.Serialize(new
        {
            secret,
            body = request.SignedContent,
            jsonParse = request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) == true,
            headers = SignatureHeaders(request),
        }));

    /// <summary>
    /// Verifies the <c>v1a</c> signatures of a received request with Node's own <c>crypto.verify</c>, given only the
    /// endpoint's <c>whpk_</c> public key; the answer says how many of them verified.
    /// </summary>
    public static Task<JsonObject> VerifyEd25519(string publicKey, ReceivedRequest request) => RunScript("verify-ed25519.js",
        JsonSerializer.Serialize(new
        {
            publicKey,
            body = request.SignedContent,
            headers = SignatureHeaders(request),
        }));

    private static Dictionary<string, string> SignatureHeaders(ReceivedRequest request) => new()
    {
        ["webhook-id"] = request.Header("webhook-id"),
        ["webhook-timestamp"] = request.Header("webhook-timestamp"),
        ["webhook-signature"] = request.Header("webhook-signature"),
    };

    private static async Task<JsonObject> RunScript(string script, string input)
    {
        var start = new ProcessStartInfo("node", script)
        {
            WorkingDirectory = Folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(output.Length > 0, $"node {script} printed nothing: " + error);
        return JsonNode.Parse(output)!.AsObject();
    }

    /// <summary>Starts the unchanged Express receiver of the integration guide on a free loopback port.</summary>
    public static async Task<(Process Process, int Port)> StartExpressReceiver()
    {
        var port = FreePort();
        var start = new ProcessStartInfo("node", "express-receiver.js")
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var process = Process.Start(start)!;
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal($"Server is running on port {port}", line);
        return (process, port);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
