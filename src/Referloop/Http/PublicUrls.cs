namespace Referloop.Http;

/// <summary>
/// Builds the absolute URLs Referloop hands out (share links, inbound hooks). <c>PublicUrl</c> in configuration
/// fixes the base behind a proxy; otherwise the request's own scheme and host are used.
/// </summary>
public sealed class PublicUrls(IConfiguration configuration, IHttpContextAccessor accessor)
{
    private string? _base;

    /// <summary>Worked out once per request (the instance is scoped): an event asks for it for every share link it writes.</summary>
    public string Base => _base ??= Resolve();

    private string Resolve()
    {
        var configured = configuration["PublicUrl"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured.TrimEnd('/');
        }
        var request = accessor.HttpContext?.Request;
        return request is null ? "http://localhost:5080" : $"{request.Scheme}://{request.Host}{request.PathBase}";
    }

    public string ShareUrl(string code) => $"{Base}/r/{code}";
}
