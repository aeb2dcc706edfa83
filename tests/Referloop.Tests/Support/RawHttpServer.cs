using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Referloop.Tests.Support;

/// <summary>
/// A loopback HTTP server that answers every request with the same bytes, then hangs up: answers no well-behaved server
/// writes, such as a body that breaks off (<see cref="CutShort"/>) or a reason phrase of any length.
/// </summary>
public sealed class RawHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;

    public RawHttpServer(string answer)
    {
        var bytes = Encoding.ASCII.GetBytes(answer);
        _listener.Start();
        _serving = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                using var socket = await _listener.AcceptSocketAsync(_stop.Token);
                await socket.ReceiveAsync(new byte[64 * 1024], SocketFlags.None, _stop.Token);
                await socket.SendAsync(bytes, SocketFlags.None, _stop.Token);
                socket.Shutdown(SocketShutdown.Both);
            }
        });
    }

    /// <summary>200 with a Content-Length its body never reaches: the client sees an <see cref="HttpIOException"/> while reading the body.</summary>
    public static RawHttpServer CutShort(string bodyStart) => new($"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{bodyStart}");

    public string Url(string path) => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}{path}";

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await Task.WhenAny(_serving, Task.Delay(1000));
        _stop.Dispose();
    }
}
