using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Referloop.Http;

namespace Referloop.Email;

/// <summary>The mails Referloop sends.</summary>
public static class EmailKind
{
    /// <summary>To a new advocate: their portal and share link.</summary>
    public const string Welcome = "welcome";

    /// <summary>A reward was issued (with its coupon code when it has one).</summary>
    public const string Reward = "reward";

    /// <summary>A milestone or goal reward was issued: the advocate reached the Nth referral or conversion.</summary>
    public const string Milestone = "milestone";

    /// <summary>Asked for on the hosted pages: the advocate's portal link. Transactional: sent even after an unsubscribe.</summary>
    public const string MagicLink = "magic_link";

    public static readonly string[] All = [Welcome, Reward, Milestone, MagicLink];

    /// <summary>Notifications the participant may refuse; they carry an unsubscribe link.</summary>
    public static bool CanUnsubscribe(string kind) => kind != MagicLink;
}

/// <summary>One mail's texts. Each part left out falls back to the default of the campaign's language.</summary>
public sealed record EmailTemplate
{
    /// <summary>One line; placeholders allowed.</summary>
    [StringLength(200)]
    public string? Subject { get; init; }

    /// <summary>The plain-text body; a line whose placeholders are all empty (no coupon code, say) is left out.</summary>
    [StringLength(10_000)]
    public string? Text { get; init; }

    /// <summary>An HTML body sent beside the text; placeholders are HTML-encoded. Left out: text only.</summary>
    [StringLength(50_000)]
    public string? Html { get; init; }
}

/// <summary>
/// A campaign's e-mail templates (<c>email</c> in the campaign API). Placeholders: <c>{firstName}</c>, <c>{name}</c>,
/// <c>{campaignName}</c>, <c>{shareUrl}</c>, <c>{portalUrl}</c>, <c>{couponCode}</c>, <c>{rewardDescription}</c>,
/// <c>{milestone}</c>, <c>{unsubscribeUrl}</c>.
/// </summary>
public sealed partial record EmailSettings
{
    public EmailTemplate? Welcome { get; init; }
    public EmailTemplate? Reward { get; init; }
    public EmailTemplate? Milestone { get; init; }
    public EmailTemplate? MagicLink { get; init; }

    public static readonly string[] Placeholders =
        ["firstName", "name", "campaignName", "shareUrl", "portalUrl", "couponCode", "rewardDescription", "milestone", "unsubscribeUrl"];

    public EmailTemplate? For(string kind) => kind switch
    {
        EmailKind.Welcome => Welcome,
        EmailKind.Reward => Reward,
        EmailKind.Milestone => Milestone,
        EmailKind.MagicLink => MagicLink,
        _ => null,
    };

    /// <summary>These settings with the template of <paramref name="kind"/> replaced (null: back to the default).</summary>
    public EmailSettings With(string kind, EmailTemplate? template) => kind switch
    {
        EmailKind.Welcome => this with { Welcome = template },
        EmailKind.Reward => this with { Reward = template },
        EmailKind.Milestone => this with { Milestone = template },
        EmailKind.MagicLink => this with { MagicLink = template },
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an e-mail kind"),
    };

    public void Validate(ValidationErrors errors, string path)
    {
        Validate(errors, $"{path}.welcome", Welcome, EmailKind.Welcome);
        Validate(errors, $"{path}.reward", Reward, EmailKind.Reward);
        Validate(errors, $"{path}.milestone", Milestone, EmailKind.Milestone);
        Validate(errors, $"{path}.magicLink", MagicLink, EmailKind.MagicLink);
    }

    private static void Validate(ValidationErrors errors, string path, EmailTemplate? template, string kind)
    {
        if (template is null)
        {
            return;
        }
        errors.MaxLength($"{path}.subject", template.Subject, 200);
        errors.MaxLength($"{path}.text", template.Text, 10_000);
        errors.MaxLength($"{path}.html", template.Html, 50_000);
        if (template.Subject is { } subject && subject.IndexOfAny(['\r', '\n']) >= 0)
        {
            errors.Add($"{path}.subject", "must be one line.");
        }
        foreach (var (field, value) in new[] { ("subject", template.Subject), ("text", template.Text), ("html", template.Html) })
        {
            foreach (var unknown in PlaceholdersIn(value).Where(p => !Placeholders.Contains(p)).Distinct())
            {
                errors.Add($"{path}.{field}", $"has the unknown placeholder {{{unknown}}}; use {string.Join(", ", Placeholders.Select(p => $"{{{p}}}"))}.");
            }
            if (!EmailKind.CanUnsubscribe(kind) && PlaceholdersIn(value).Contains("unsubscribeUrl"))
            {
                errors.Add($"{path}.{field}", "cannot hold {unsubscribeUrl}: the portal link is sent to whoever asks for it, subscribed or not.");
            }
        }
        if (kind == EmailKind.MagicLink && template.Text is { } text && !PlaceholdersIn(text).Contains("portalUrl"))
        {
            errors.Add($"{path}.text", "must hold {portalUrl}: it is the link the advocate asked for.");
        }
    }

    public static IEnumerable<string> PlaceholdersIn(string? value) =>
        value is null ? [] : PlaceholderPattern().Matches(value).Select(m => m.Groups[1].Value);

    /// <summary>Blank parts become null (their defaults), templates with no part left disappear.</summary>
    public EmailSettings Normalise() => new()
    {
        Welcome = Normalise(Welcome),
        Reward = Normalise(Reward),
        Milestone = Normalise(Milestone),
        MagicLink = Normalise(MagicLink),
    };

    private static EmailTemplate? Normalise(EmailTemplate? template)
    {
        if (template is null)
        {
            return null;
        }
        var normalised = new EmailTemplate
        {
            Subject = string.IsNullOrWhiteSpace(template.Subject) ? null : template.Subject.Trim(),
            Text = string.IsNullOrWhiteSpace(template.Text) ? null : template.Text.Replace("\r\n", "\n", StringComparison.Ordinal),
            Html = string.IsNullOrWhiteSpace(template.Html) ? null : template.Html,
        };
        return normalised is { Subject: null, Text: null, Html: null } ? null : normalised;
    }

    [GeneratedRegex(@"\{([A-Za-z]+)\}")]
    internal static partial Regex PlaceholderPattern();
}
