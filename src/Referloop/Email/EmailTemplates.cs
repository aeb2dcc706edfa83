using System.Net;
using Referloop.HostedPages;

namespace Referloop.Email;

/// <summary>A mail ready to send: subject, plain text, and HTML when the campaign's template has one.</summary>
public sealed record RenderedEmail(string Subject, string Text, string? Html);

/// <summary>
/// Fills a campaign's template (or the default of its language, from <c>PageText.resx</c>) with a participant's
/// values. Pure: the sender gathers the values, this decides the words.
/// </summary>
public static class EmailTemplates
{
    public static string DefaultSubject(string kind, PageText text) => text[$"Email_{kind}_Subject"];

    public static string DefaultText(string kind, PageText text) => text[$"Email_{kind}_Text"];

    /// <summary>
    /// The mail of <paramref name="kind"/>. A notification (not the magic link) whose template does not place
    /// <c>{unsubscribeUrl}</c> itself gets the unsubscribe line appended.
    /// </summary>
    public static RenderedEmail Render(string kind, EmailTemplate? template, PageText text, IReadOnlyDictionary<string, string> values)
    {
        var subject = Fill(template?.Subject ?? DefaultSubject(kind, text), values, encode: false);
        // One line, whatever a value held.
        subject = subject.ReplaceLineEndings(" ").Trim();
        var body = Lines(template?.Text ?? DefaultText(kind, text), values);
        var html = template?.Html is { } h ? Fill(h, values, encode: true) : null;
        if (EmailKind.CanUnsubscribe(kind) && values.TryGetValue("unsubscribeUrl", out var unsubscribe))
        {
            if (!EmailSettings.PlaceholdersIn(template?.Text ?? DefaultText(kind, text)).Contains("unsubscribeUrl"))
            {
                body = $"{body.TrimEnd()}\n\n-- \n{text["EmailUnsubscribeFooter"]} {unsubscribe}\n";
            }
            if (html is not null && !EmailSettings.PlaceholdersIn(template!.Html).Contains("unsubscribeUrl"))
            {
                var footer = $"<p style=\"font-size:small\"><a href=\"{WebUtility.HtmlEncode(unsubscribe)}\">{WebUtility.HtmlEncode(text["EmailUnsubscribeLink"])}</a></p>";
                var end = html.LastIndexOf("</body>", StringComparison.OrdinalIgnoreCase);
                html = end >= 0 ? html.Insert(end, footer) : html + footer;
            }
        }
        return new RenderedEmail(subject, body, html);
    }

    /// <summary>Fills the text line by line, leaving out a line whose placeholders all came out empty.</summary>
    private static string Lines(string template, IReadOnlyDictionary<string, string> values)
    {
        var lines = template.ReplaceLineEndings("\n").Split('\n')
            .Where(line =>
            {
                var names = EmailSettings.PlaceholdersIn(line).ToList();
                return names.Count == 0 || names.Any(n => !string.IsNullOrEmpty(values.GetValueOrDefault(n)));
            })
            .Select(line => Fill(line, values, encode: false));
        return string.Join('\n', lines);
    }

    private static string Fill(string template, IReadOnlyDictionary<string, string> values, bool encode) =>
        EmailSettings.PlaceholderPattern().Replace(template, match =>
        {
            var value = values.GetValueOrDefault(match.Groups[1].Value) ?? "";
            return encode ? WebUtility.HtmlEncode(value) : value;
        });

    /// <summary>The first word of the name, or the language's greeting word for someone without a name.</summary>
    public static string FirstName(string? name, PageText text) =>
        string.IsNullOrWhiteSpace(name) ? text["EmailNoName"] : name.Trim().Split(' ', 2)[0];
}
