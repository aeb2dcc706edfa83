using MailKit.Security;
using MimeKit;

namespace Referloop.Email;

/// <summary>How the connection to the SMTP server is protected (<c>Email:Smtp:Security</c>).</summary>
public static class SmtpSecurity
{
    /// <summary>Plain connection, upgraded with STARTTLS; refused when the server does not offer it. The default.</summary>
    public const string StartTls = "starttls";

    /// <summary>TLS from the first byte (implicit TLS, usually port 465).</summary>
    public const string Ssl = "ssl";

    /// <summary>No TLS: a relay on the same host or a private network only.</summary>
    public const string None = "none";

    public static readonly string[] All = [StartTls, Ssl, None];

    public static SecureSocketOptions Socket(string security) => security switch
    {
        Ssl => SecureSocketOptions.SslOnConnect,
        None => SecureSocketOptions.None,
        _ => SecureSocketOptions.StartTls,
    };
}

/// <summary>
/// The <c>Email</c> configuration section. E-mail is off while <c>Email:Smtp:Host</c> is empty: then no send is ever
/// recorded and the outbox pays nothing for it.
/// </summary>
public sealed class EmailOptions
{
    public const string Section = "Email";

    public SmtpOptions Smtp { get; set; } = new();

    public SenderOptions From { get; set; } = new();

    /// <summary>Fallback for the wake-up signal (sends written by another instance, retries falling due).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether this instance sends. Several instances on one PostgreSQL share the work.</summary>
    public bool SendingEnabled { get; set; } = true;

    public bool Enabled => !string.IsNullOrWhiteSpace(Smtp.Host);

    public sealed class SmtpOptions
    {
        public string? Host { get; set; }
        public int? Port { get; set; }
        public string? Username { get; set; }
        public string? Password { get; set; }
        public string? Security { get; set; }

        /// <summary>Bound on one connection, command or message.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

        public string SecurityOrDefault => string.IsNullOrWhiteSpace(Security) ? SmtpSecurity.StartTls : Security.Trim().ToLowerInvariant();

        /// <summary>587 (submission) for STARTTLS and none, 465 for implicit TLS.</summary>
        public int PortOrDefault => Port ?? (SecurityOrDefault == SmtpSecurity.Ssl ? 465 : 587);
    }

    public sealed class SenderOptions
    {
        public string? Address { get; set; }
        public string? Name { get; set; }
    }

    /// <summary>
    /// What is wrong with the section, each naming its key; empty when e-mail is off or usable. Read from the raw
    /// configuration so that a port such as "abc" is reported, not thrown.
    /// </summary>
    public static List<string> Problems(IConfiguration configuration)
    {
        var problems = new List<string>();
        var smtp = configuration.GetSection($"{Section}:Smtp");
        if (string.IsNullOrWhiteSpace(smtp["Host"]))
        {
            return problems;
        }
        if (smtp["Port"] is { Length: > 0 } port && (!int.TryParse(port, out var number) || number is < 1 or > 65535))
        {
            problems.Add($"Email:Smtp:Port is '{port}'; use a TCP port from 1 to 65535 (587 for STARTTLS, 465 for SSL).");
        }
        if (smtp["Security"] is { Length: > 0 } security && !SmtpSecurity.All.Contains(security.Trim().ToLowerInvariant()))
        {
            problems.Add($"Email:Smtp:Security is '{security}'; use one of {string.Join(", ", SmtpSecurity.All)}.");
        }
        if (string.IsNullOrWhiteSpace(smtp["Username"]) != string.IsNullOrWhiteSpace(smtp["Password"]))
        {
            problems.Add("Email:Smtp:Username and Email:Smtp:Password go together: set both to sign in, or neither.");
        }
        if (smtp["Timeout"] is { Length: > 0 } timeout && (!TimeSpan.TryParse(timeout, System.Globalization.CultureInfo.InvariantCulture,
            out var span) || span <= TimeSpan.Zero))
        {
            problems.Add($"Email:Smtp:Timeout is '{timeout}'; use a positive time span such as 00:00:30.");
        }
        var from = configuration[$"{Section}:From:Address"];
        if (string.IsNullOrWhiteSpace(from))
        {
            problems.Add("Email:From:Address is not set. With Email:Smtp:Host set, Referloop needs the sender address of its " +
                "e-mails (Email__From__Address=referrals@shop.example.com).");
        }
        else if (!MailboxAddress.TryParse(from.Trim(), out var mailbox) || !mailbox.Address.Contains('@'))
        {
            problems.Add($"Email:From:Address '{from}' is not an e-mail address such as referrals@shop.example.com.");
        }
        if (configuration[$"{Section}:From:Name"] is { Length: > 100 })
        {
            problems.Add("Email:From:Name is longer than 100 characters.");
        }
        return problems;
    }
}
