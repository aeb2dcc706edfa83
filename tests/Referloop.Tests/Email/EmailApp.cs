using System.Net;
using System.Net.Sockets;
using System.Text;
using MimeKit;
using netDumbster.smtp;
using Referloop.Tests.Support;

namespace Referloop.Tests.Email;

/// <summary>A server that mails through a real SMTP receiver on loopback (netDumbster), read back with MimeKit.</summary>
public class EmailApp : ReferloopApp
{
    public Inbox Inbox { get; } = new();

    protected virtual int SmtpPort => Inbox.Port;

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Email:Smtp:Host"] = "127.0.0.1";
            settings["Email:Smtp:Port"] = SmtpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Email:Smtp:Security"] = "none";
            settings["Email:From:Address"] = "referrals@shop.example.com";
            settings["Email:From:Name"] = "Shop referrals";
            settings["Email:PollInterval"] = "00:00:00.200";
            return settings;
        }
    }

    protected override async Task DisposeResourcesAsync()
    {
        await base.DisposeResourcesAsync();
        Inbox.Dispose();
    }
}

/// <summary>A receiver whose every MAIL FROM is answered 451 (try again later), like a mail server under load.</summary>
public sealed class FailingEmailApp : EmailApp
{
    public FailingSmtpServer Failing { get; } = new();

    protected override int SmtpPort => Failing.Port;

    protected override async Task DisposeResourcesAsync()
    {
        await base.DisposeResourcesAsync();
        Failing.Dispose();
    }
}

public sealed class Inbox : IDisposable
{
    private readonly SimpleSmtpServer _server = SimpleSmtpServer.Start();

    public int Port => _server.Configuration.Port;

    public IReadOnlyList<MimeMessage> All() =>
        _server.ReceivedEmail.Select(m => MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(m.Data)))).ToList();

    public IReadOnlyList<MimeMessage> To(string address) =>
        All().Where(m => m.To.Mailboxes.Any(b => string.Equals(b.Address, address, StringComparison.OrdinalIgnoreCase))).ToList();

    /// <summary>The first mail to <paramref name="address"/>, waiting up to 15 s for it.</summary>
    public async Task<MimeMessage> WaitFor(string address) => (await WaitFor(address, 1))[0];

    /// <summary>
    /// Waits (up to 15 s) until <paramref name="count"/> mails to <paramref name="address"/> arrived, and returns them
    /// (in no particular order: the receiver keeps no order).
    /// </summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitFor(string address, int count)
    {
        for (var i = 0; i < 750; i++)
        {
            var mails = To(address);
            if (mails.Count >= count)
            {
                return mails;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"no {count} mails to {address}; the receiver holds {All().Count} mails");
    }

    public void Dispose() => _server.Dispose();
}

/// <summary>A real SMTP conversation that refuses every message with 451; counts the refusals.</summary>
public sealed class FailingSmtpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private int _refused;

    public FailingSmtpServer()
    {
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Refused => Volatile.Read(ref _refused);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = ConverseAsync(client);
        }
    }

    private async Task ConverseAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
        try
        {
            await writer.WriteLineAsync("220 failing.test ESMTP");
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                var command = line.Split(' ', 2)[0].ToUpperInvariant();
                switch (command)
                {
                    case "EHLO" or "HELO":
                        await writer.WriteLineAsync("250 failing.test");
                        break;
                    case "MAIL":
                        Interlocked.Increment(ref _refused);
                        await writer.WriteLineAsync("451 4.3.0 Mail system busy, try again later");
                        break;
                    case "RSET" or "NOOP":
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 Bye");
                        return;
                    default:
                        await writer.WriteLineAsync("500 Unknown command");
                        break;
                }
            }
        }
        catch (Exception)
        {
            // The client went away.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
