using System.Net;
using System.Net.Sockets;
using System.Text;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

public class BrokenReceiverTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task An_answer_cut_short_while_its_body_is_read_is_a_failed_attempt_recorded_and_retried()
    {
        // Answers 200 with a Content-Length its body never reaches, then hangs up.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                var buffer = new byte[64 * 1024];
                await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\ncut short"), SocketFlags.None, stop.Token);
                socket.Shutdown(SocketShutdown.Both);
            }
        });
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var endpointId = (string)(await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = $"http://127.0.0.1:{port}/hook", eventTypes = new[] { "reward.issued" } }))["id"]!;

        var messageId = await app.Publish(EventTypes.RewardIssued);

        var failed = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal("pending", (string)failed["status"]!);
        Assert.NotNull(failed["nextAttemptAt"]);
        Assert.False(string.IsNullOrEmpty((string?)failed["attempts"]![0]!["error"]), "the attempt says what went wrong");
        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! >= 2);
        await stop.CancelAsync();
        listener.Stop();
        await Task.WhenAny(serving, Task.Delay(1000));
    }
}
