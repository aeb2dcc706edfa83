using Microsoft.AspNetCore.Routing.Template;

namespace Referloop.Http;

/// <summary>
/// Answers 405 with an <c>Allow</c> header and problem details when a path exists under another method. Routing does
/// so itself only when nothing else could match the path; the static-assets fallback of a build output (<c>dotnet
/// run</c>) is such a thing for GET, which turned <c>GET</c> on a POST-only route into a 404.
/// </summary>
internal sealed class MethodNotAllowed(EndpointDataSource endpoints)
{
    private readonly Lazy<IReadOnlyList<(TemplateMatcher Matcher, IReadOnlyList<string> Methods)>> _routes = new(() =>
    [
        .. endpoints.Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IHttpMethodMetadata>() is { HttpMethods.Count: > 0 }
                && e.RoutePattern.Parameters.All(p => !p.IsCatchAll))
            .Select(e => (new TemplateMatcher(TemplateParser.Parse(e.RoutePattern.RawText!.TrimStart('/')), new RouteValueDictionary()),
                e.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods)),
    ]);

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (http.GetEndpoint() is not null)
        {
            await next(http);
            return;
        }
        var allowed = _routes.Value.Where(r => r.Matcher.TryMatch(http.Request.Path, new RouteValueDictionary()))
            .SelectMany(r => r.Methods).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (allowed.Count == 0)
        {
            await next(http);
            return;
        }
        http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
        http.Response.Headers.Allow = string.Join(", ", allowed);
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails =
            {
                Status = StatusCodes.Status405MethodNotAllowed,
                Title = "Method Not Allowed",
                Detail = $"{http.Request.Path} answers {string.Join(", ", allowed)}, not {http.Request.Method}.",
            },
        });
    }
}
