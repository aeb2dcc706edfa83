using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Referloop.Campaigns;
using Referloop.Dashboard;
using Referloop.Email;
using Referloop.HostedPages;
using Referloop.Hosting;
using Referloop.Http;
using Referloop.Idempotency;
using Referloop.InboundHooks;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Security;
using Referloop.SocialProof;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;
using Scalar.AspNetCore;

if (args is [HealthCheckCommand.Argument, ..])
{
    return await HealthCheckCommand.RunAsync(args);
}

// Settings ship beside the binary; relative data paths (./data) resolve against the folder the server was started from.
// They are read once, at start: reloading them on change watches the whole content root, and a SQLite database kept
// under it (the container's /app/data, or ./data beside the binary) would wake the watcher on every write.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    // First: a last argument without a value (--urls) would take the next one as its value.
    Args = ["--hostBuilder:reloadConfigOnChange=false", .. args],
    ContentRootPath = AppContext.BaseDirectory,
});
// Referloop__Database__Provider=postgres and friends, beside the plain Database__Provider form.
builder.Configuration.AddEnvironmentVariables("Referloop__");
// Settings that would send strangers' hosts into share links, or believe any client about its address, stop the
// start here too, before the database is touched.
var proxies = TrustedProxies.Read(builder.Configuration, out var proxiesProblem);
if (StartChecks.Problems(builder.Configuration, builder.Environment, proxiesProblem) is { Count: > 0 } problems)
{
    return StartChecks.Refuse(problems);
}
// A build output (not a published folder) finds wwwroot through the SDK's static-web-assets manifest, which ASP.NET
// reads only in Development: elsewhere /admin/admin.css would be mapped but empty. No-op in a published folder.
builder.WebHost.UseStaticWebAssets();

builder.Services.AddReferloopStorage(builder.Configuration);
builder.Services.AddSingleton<CampaignCache>();
// Features watch the saves they care about: every IInterceptor registered here joins the database context.
builder.Services.AddSingleton<IInterceptor, CampaignCache.Invalidation>();
builder.Services.AddReferloopDataProtection(builder.Configuration);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddMemoryCache();
builder.Services.AddSingleton<PublicUrls>();
builder.Services.AddScoped<CouponAllocator>();
builder.Services.AddInboundHooks(builder.Configuration);
builder.Services.AddCouponPools();
builder.Services.AddReferralEngine();
builder.Services.AddWebhooks(builder.Configuration);
builder.Services.AddEmail(builder.Configuration);
PublicLimits.Register(builder.Services, builder.Configuration);
builder.Services.AddIdempotencyKeys();
builder.Services.AddSingleton<MethodNotAllowed>();
builder.Services.AddRetentionSweep();

builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
{
    if (context.ProblemDetails.Status == StatusCodes.Status415UnsupportedMediaType)
    {
        context.ProblemDetails.Detail ??= "Send the body as JSON with 'Content-Type: application/json'.";
    }
});
builder.Services.AddExceptionHandler<BadRequestHandler>();
builder.Services.ConfigureHttpJsonOptions(options => options.SerializerOptions.AllowOutOfOrderMetadataProperties = true);
// A body that does not bind is answered by BadRequestHandler, naming the field, in every environment (by default only
// Development throws; elsewhere the answer was a bare 400).
builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

builder.Services.AddAuthentication(AdminAuthentication.SchemeName)
    .AddScheme<AuthenticationSchemeOptions, AdminAuthentication>(AdminAuthentication.SchemeName, null);
builder.Services.AddAuthorizationBuilder()
    .AddPolicy(AdminAuthentication.Policy, policy => policy.AddAuthenticationSchemes(AdminAuthentication.SchemeName).RequireAuthenticatedUser());

builder.Services.AddDashboard(builder.Environment);
builder.Services.AddHostedPages();
builder.Services.AddOpenApi(options => options
    .AddDocumentTransformer<BearerSecurityTransformer>()
    .AddOperationTransformer<BearerSecurityTransformer>()
    .AddDocumentTransformer<ContractOperationTransformer>()
    .AddOperationTransformer<ContractOperationTransformer>()
    .AddSchemaTransformer<ContractSchemaTransformer>());
builder.Services.AddHealthChecks().AddDbContextCheck<ReferloopDb>("database", tags: ["ready"]);
// Off unless enabled: /metrics answers anyone who reaches it, so it belongs on an internal port or network.
var prometheus = builder.Configuration.GetValue<bool>("Metrics:Prometheus");
var telemetry = builder.Services.AddOpenTelemetry()
    .WithMetrics(metrics =>
    {
        metrics.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddMeter(Telemetry.Name);
        if (prometheus)
        {
            metrics.AddPrometheusExporter();
        }
    });
if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
{
    // Traces only when they go somewhere: recording a span for every request and webhook attempt costs CPU on the
    // hot paths (and adds a traceparent header to every webhook) for nobody to read.
    telemetry.WithTracing(tracing => tracing
            .AddAspNetCoreInstrumentation(options => options.EnrichWithHttpRequest = TracedPaths.Enrich)
            .AddHttpClientInstrumentation().AddSource(Telemetry.Name))
        .UseOtlpExporter();
}

builder.Services.Configure<ForwardedHeadersOptions>(proxies.Configure);

var app = builder.Build();

if (!await StartChecks.PrepareDatabaseAsync(app))
{
    return StartChecks.FailureExitCode;
}
app.Services.EnsureDataProtectionKey();
await app.Services.EnsureAdminKeyAsync();

if (proxies.Any)
{
    app.UseForwardedHeaders();
}
app.UseExceptionHandler();
app.UseStatusCodePages();
app.Use((http, next) => http.RequestServices.GetRequiredService<MethodNotAllowed>().InvokeAsync(http, next));
app.UseNulGuard();
app.UseDashboardHeaders();
app.UseHostedPageHeaders();
app.MapStaticAssets();
app.UseCors();
app.UseAuthentication();
app.UseApiKeyScopes();
app.UseAuthorization();
app.UseRateLimiter();
PublicLimits.UseBodyLimits(app);
app.UseJsonNulGuard();
app.UseIdempotencyKeys();

app.MapOpenApi();
app.MapScalarApiReference("/docs", options => options.WithTitle("Referloop API").AddPreferredSecuritySchemes("Bearer"));
app.MapHealthChecks("/health/live", new() { Predicate = _ => false });
app.MapHealthChecks("/health/ready", new() { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = HealthReports.WriteAsync });
if (prometheus)
{
    app.MapPrometheusScrapingEndpoint();
}
app.MapGet("/", () => TypedResults.Redirect("/docs")).ExcludeFromDescription();

app.MapApiKeys();
app.MapCampaigns();
app.MapCouponPools();
app.MapParticipants();
app.MapCampaignCsv();
app.MapShareLinks();
app.MapInboundHooks();
app.MapHookReceiver();
app.MapSocialProof();
app.MapDashboard();
app.MapHostedPages();
app.MapEvents();
app.MapTrackingScript();
app.MapReferrals();
app.MapRewards();
app.MapWebhooks();
app.MapEmail();

app.Run();
return 0;

public partial class Program;
