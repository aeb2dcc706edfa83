using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;

namespace Referloop.Http;

/// <summary>
/// Limits of the routes anyone can call (<c>POST /api/v1/events</c> from a browser, <c>GET /r/{code}</c>,
/// <c>POST /hooks/{token}</c>): requests per client address, requests per publishable key, and body sizes. Callers with
/// the admin key are never limited. Every limit is a setting (README, "Security").
/// </summary>
public sealed class PublicLimits
{
    /// <summary>Browser calls to <c>POST /api/v1/events</c>, per client address.</summary>
    public const string BrowserEvents = "browser-events";

    /// <summary><c>GET /r/{code}</c>, per client address.</summary>
    public const string ShareLinks = "share-links";

    /// <summary><c>POST /hooks/{token}</c>, per client address: a token in the URL is the caller's to invent.</summary>
    public const string InboundHooks = "inbound-hooks";

    /// <summary>The largest body of <c>POST /api/v1/events</c>: an event with 50 properties fits many times over.</summary>
    public const long EventBodyBytes = 64 * 1024;

    private readonly PartitionedRateLimiter<string> _perKey;
    private readonly PartitionedRateLimiter<string> _formsPerAddress;
    private readonly PartitionedRateLimiter<string> _signInFailuresPerAddress;

    public PublicLimits(IConfiguration configuration)
    {
        _perKey = PerMinute(Setting(configuration, "RateLimits:BrowserEventsPerKeyPerMinute", 1200));
        _formsPerAddress = PerMinute(Setting(configuration, "RateLimits:HostedFormsPerIpPerMinute", 10));
        _signInFailuresPerAddress = PerMinute(Setting(configuration, "RateLimits:SignInFailuresPerIpPerMinute", 10));
    }

    /// <summary>A budget of <paramref name="permits"/> a minute for each key (an address, a campaign), no queue.</summary>
    private static PartitionedRateLimiter<string> PerMinute(int permits) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key,
            _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));

    /// <summary>
    /// Whether the client address has used up its failed dashboard sign-ins of the minute: then no key is even
    /// checked (Retry-After is set on the answer). Only failures count, so an admin signing in is never held up, and
    /// guessing a key the operator chose costs a minute per handful of tries.
    /// </summary>
    public bool SignInRefused(HttpContext http)
    {
        // Zero permits: asks whether any are left without taking one.
        using var probe = _signInFailuresPerAddress.AttemptAcquire(ClientKey(http.Connection.RemoteIpAddress), 0);
        if (!probe.IsAcquired)
        {
            SetRetryAfter(http, probe);
        }
        return !probe.IsAcquired;
    }

    /// <summary>Counts a failed dashboard sign-in against the client address.</summary>
    public void SignInFailed(HttpContext http) =>
        _signInFailuresPerAddress.AttemptAcquire(ClientKey(http.Connection.RemoteIpAddress)).Dispose();

    /// <summary>
    /// Takes one permit of the client address's budget for the hosted pages' forms (join, invited): a person sends
    /// one or two, a script sends thousands. False when refused; Retry-After is set on the answer.
    /// </summary>
    public bool TakeFormPermit(HttpContext http)
    {
        using var lease = _formsPerAddress.AttemptAcquire(ClientKey(http.Connection.RemoteIpAddress));
        if (!lease.IsAcquired)
        {
            SetRetryAfter(http, lease);
        }
        return lease.IsAcquired;
    }

    /// <summary>
    /// Takes one permit of the campaign's publishable-key budget, so that many addresses together cannot report more
    /// than the shop's own pages would. Null when allowed; otherwise the 429 to answer.
    /// </summary>
    public ProblemHttpResult? TakeKeyPermit(HttpContext http, string campaignId)
    {
        using var lease = _perKey.AttemptAcquire(campaignId);
        if (lease.IsAcquired)
        {
            return null;
        }
        SetRetryAfter(http, lease);
        return TypedResults.Problem(title: "Too many requests.", statusCode: StatusCodes.Status429TooManyRequests,
            detail: "The campaign's publishable key reports too many events; retry after the time in Retry-After.");
    }

    public static void Register(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<PublicLimits>();
        var minute = TimeSpan.FromMinutes(1);
        var eventsPerIp = Setting(configuration, "RateLimits:BrowserEventsPerIpPerMinute", 60);
        var clicksPerIp = Setting(configuration, "RateLimits:ShareLinksPerIpPerMinute", 120);
        var hooksPerIp = Setting(configuration, "InboundHooks:RateLimit:Permits", 600);
        var hooksWindow = TimeSpan.FromSeconds(Setting(configuration, "InboundHooks:RateLimit:WindowSeconds", 60));
        services.AddRateLimiter(options =>
        {
            options.AddPolicy(BrowserEvents, http => http.User.Identity?.IsAuthenticated == true
                ? RateLimitPartition.GetNoLimiter("admin")
                : PerAddress(http, eventsPerIp, minute));
            options.AddPolicy(ShareLinks, http => PerAddress(http, clicksPerIp, minute));
            options.AddPolicy(InboundHooks, http => PerAddress(http, hooksPerIp, hooksWindow));
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.OnRejected = async (context, ct) =>
            {
                SetRetryAfter(context.HttpContext, context.Lease);
                var problems = context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests.",
                        Detail = "This address sends too many requests; slow down and retry after the time in Retry-After.",
                    },
                });
            };
        });
    }

    /// <summary>
    /// One budget per client address. IPv6 clients are grouped by their /64, which one subscriber usually holds
    /// whole, so rotating addresses inside it buys nothing.
    /// </summary>
    private static RateLimitPartition<string> PerAddress(HttpContext http, int permits, TimeSpan window) =>
        RateLimitPartition.GetFixedWindowLimiter(ClientKey(http.Connection.RemoteIpAddress),
            _ => new FixedWindowRateLimiterOptions { PermitLimit = permits, Window = window, QueueLimit = 0 });

    /// <summary>
    /// Refuses a body larger than its route allows (<see cref="IRequestSizeLimitMetadata"/>) with 413 problem details
    /// before a byte of it is read, and caps what the server reads of a body without a length.
    /// </summary>
    public static void UseBodyLimits(IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>() is { MaxRequestBodySize: { } max })
        {
            if (http.Request.ContentLength > max)
            {
                http.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new HttpValidationProblemDetails(new Dictionary<string, string[]>
                    {
                        ["body"] = [$"must be at most {max:N0} bytes; this one has {http.Request.ContentLength:N0}."],
                    })
                    {
                        Status = StatusCodes.Status413PayloadTooLarge,
                        Title = "The request body is too large.",
                        Detail = $"This route accepts bodies of at most {max:N0} bytes.",
                    },
                });
                return;
            }
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = max;
            }
        }
        await next(http);
    });

    internal static string ClientKey(IPAddress? address)
    {
        if (address is null)
        {
            return "";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>The limits' settings, each a whole number of at least 1 (<see cref="Problems"/> checks them before the start).</summary>
    private static readonly string[] Settings =
    [
        "RateLimits:BrowserEventsPerKeyPerMinute", "RateLimits:HostedFormsPerIpPerMinute", "RateLimits:SignInFailuresPerIpPerMinute",
        "RateLimits:BrowserEventsPerIpPerMinute", "RateLimits:ShareLinksPerIpPerMinute", "InboundHooks:RateLimit:Permits",
        "InboundHooks:RateLimit:WindowSeconds",
    ];

    /// <summary>Each limit set to something other than a whole number of at least 1, in words.</summary>
    public static IEnumerable<string> Problems(IConfiguration configuration) => Settings
        .Where(key => configuration[key] is { Length: > 0 } value
            && !(int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) && number >= 1))
        .Select(key => $"{key} is '{configuration[key]}'; use a whole number of at least 1.");

    private static int Setting(IConfiguration configuration, string key, int fallback)
    {
        var value = configuration.GetValue(key, fallback);
        return value >= 1 ? value : throw new InvalidOperationException($"{key} must be at least 1 (it is {value}).");
    }

    private static void SetRetryAfter(HttpContext http, RateLimitLease lease)
    {
        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
    }
}
