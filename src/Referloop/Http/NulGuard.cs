namespace Referloop.Http;

/// <summary>
/// Refuses with 400 a request whose query string or posted form holds a NUL character (<c>%00</c>): no value Referloop
/// takes has one, and PostgreSQL's text refuses it, which turned the bad request into a 500 wherever the value reached
/// a query (a filter, a search). ASP.NET Core's form reader throws on one (and on a malformed form), a 500 too.
/// </summary>
public static class NulGuard
{
    /// <summary>Forms as the pages post them; a larger one is left to its page, whose size limit applies before it is read.</summary>
    private const long FormBytes = 16 * 1024;

    public static IApplicationBuilder UseNulGuard(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var request = http.Request;
        if (request.QueryString.Value?.Contains("%00", StringComparison.Ordinal) == true || !await FormReadsAsync(http))
        {
            await TypedResults.Problem(title: "The request is not valid.", statusCode: StatusCodes.Status400BadRequest,
                detail: "A value in the address or the form holds a NUL character (%00), or the form cannot be read.").ExecuteAsync(http);
            return;
        }
        await next(http);
    });

    private static async Task<bool> FormReadsAsync(HttpContext http)
    {
        var request = http.Request;
        // The pages' forms only: an inbound hook keeps its body as received, and reads it itself.
        if (request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) != true
            || request.ContentLength > FormBytes || request.Path.StartsWithSegments("/hooks") || request.Path.StartsWithSegments("/api"))
        {
            return true;
        }
        try
        {
            await request.ReadFormAsync(http.RequestAborted);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }
}
