using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;

namespace Referloop.Tests.Support;

public static class DatabaseInterception
{
    /// <summary>Has <paramref name="interceptor"/> see the commands of the server's database contexts, on either provider.</summary>
    public static void InterceptDatabase(this IWebHostBuilder builder, IInterceptor interceptor) =>
        builder.ConfigureTestServices(services =>
        {
            services.ConfigureDbContext<SqliteReferloopDb>(options => options.AddInterceptors(interceptor), ServiceLifetime.Singleton);
            services.ConfigureDbContext<PostgresReferloopDb>(options => options.AddInterceptors(interceptor), ServiceLifetime.Singleton);
        });
}
