using Microsoft.AspNetCore.Mvc;

namespace Referloop.Security;

/// <summary>
/// What an admin API key may do: <c>full</c> everything (and only it manages keys), <c>read-only</c> GET requests,
/// <c>events-only</c> report events (<c>POST /api/v1/events</c>) and read them back.
/// </summary>
public static class ApiKeyScope
{
    public const string Full = "full";
    public const string ReadOnly = "read-only";
    public const string EventsOnly = "events-only";

    public static readonly string[] All = [Full, ReadOnly, EventsOnly];

    /// <summary>The claim that carries a bearer key's scope.</summary>
    public const string ClaimType = "referloop:scope";

    private static readonly string[] FullOnly = [Full];
    private static readonly string[] Reads = [Full, ReadOnly];
    private static readonly string[] EventWrites = [Full, EventsOnly];

    /// <summary>The scopes that may make a request, from its method, path and endpoint.</summary>
    public static string[] Allowing(string method, PathString path, EndpointMetadataCollection? metadata)
    {
        if (metadata?.GetMetadata<FullScopeOnly>() is not null)
        {
            return FullOnly;
        }
        var events = path.StartsWithSegments("/api/v1/events", out var rest);
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method))
        {
            return events ? All : Reads;
        }
        return events && HttpMethods.IsPost(method) && (!rest.HasValue || rest.Value == "/") ? EventWrites : FullOnly;
    }

    public static string Describe(string scope) => scope switch
    {
        ReadOnly => "'read-only', which allows GET requests only (and no secrets)",
        EventsOnly => "'events-only', which allows POST /api/v1/events and reading events only",
        _ => $"'{scope}'",
    };

    /// <summary>
    /// Refuses a bearer-key request its key's scope does not allow, with a 403 naming the scope, before any handler
    /// (or idempotency record) sees it. Requests without a key, and routes that do not exist, pass untouched.
    /// </summary>
    public static IApplicationBuilder UseApiKeyScopes(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var scope = http.User.FindFirst(ClaimType)?.Value;
        var endpoint = http.GetEndpoint();
        if (scope is not null && endpoint is not null)
        {
            var allowing = Allowing(http.Request.Method, http.Request.Path, endpoint.Metadata);
            if (!allowing.Contains(scope))
            {
                http.Response.StatusCode = StatusCodes.Status403Forbidden;
                var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = StatusCodes.Status403Forbidden,
                        Title = "This API key's scope does not allow this request.",
                        Detail = $"The key has scope {Describe(scope)}; {http.Request.Method} {http.Request.Path} needs " +
                            $"{string.Join(" or ", allowing.Select(s => $"'{s}'"))}.",
                        Extensions = { ["scope"] = scope, ["requiredScopes"] = allowing },
                    },
                });
                return;
            }
        }
        await next(http);
    });
}

/// <summary>Marks a route only a <c>full</c> key may call, whatever its method: key management, reading secrets.</summary>
public sealed record FullScopeOnly;

public static class FullScopeOnlyExtensions
{
    public static TBuilder RequireFullScope<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new FullScopeOnly());
}
