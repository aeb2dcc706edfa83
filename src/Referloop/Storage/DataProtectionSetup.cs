using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Storage;

public static class DataProtectionSetup
{
    public const string ApplicationName = "Referloop";

    /// <summary>
    /// The key ring lives in the database, so every instance on one database can read what another protected
    /// (webhook signing keys, dashboard cookies). An operator who wants the ring itself encrypted adds
    /// <c>ProtectKeysWith…</c> on top (see README, "Keys at rest").
    /// </summary>
    public static IDataProtectionBuilder AddReferloopDataProtection(this IServiceCollection services) =>
        services.AddDataProtection()
            .SetApplicationName(ApplicationName)
            .PersistKeysToDbContext<ReferloopDb>();

    /// <summary>
    /// Makes sure the ring has a key before the server serves anything. Otherwise two instances that each made their
    /// first key lazily could each hold a ring without the other's key until their next refresh (hours later), and
    /// could not read what the other protected.
    /// </summary>
    public static void EnsureDataProtectionKey(this IServiceProvider services) =>
        services.GetRequiredService<IDataProtectionProvider>().CreateProtector("Referloop.Startup").Protect([]);
}

internal sealed class DataProtectionKeyConfiguration : IEntityTypeConfiguration<DataProtectionKey>
{
    public void Configure(EntityTypeBuilder<DataProtectionKey> key) => key.ToTable("data_protection_keys");
}
