namespace Referloop.Email;

/// <summary>
/// E-mail notifications over SMTP (MailKit), off unless <c>Email:Smtp:Host</c> is set: the welcome mail with the
/// portal link, reward and milestone mails, the magic link (<c>/join/{campaign}/portal-link</c>) and unsubscribing
/// (<c>/unsubscribe/{token}</c>); Razor Pages in this folder.
/// </summary>
public static class EmailSetup
{
    public static IServiceCollection AddEmail(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<EmailOptions>(configuration.GetSection(EmailOptions.Section));
        services.AddSingleton<EmailSignal>();
        services.AddSingleton<EmailOutbox>();
        services.AddSingleton<EmailLinks>();
        services.AddSingleton<EmailSender>();
        services.AddHostedService(sp => sp.GetRequiredService<EmailSender>());
        return services;
    }
}
