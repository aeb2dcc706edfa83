using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Referloop.Storage;

public static class DataProtectionSetup
{
    public const string ApplicationName = "Referloop";

    public const string CertificatePathSetting = "DataProtection:CertificatePath";
    public const string CertificatePasswordSetting = "DataProtection:CertificatePassword";

    /// <summary>
    /// The key ring lives in the database, so every instance on one database can read what another protected
    /// (webhook signing keys, dashboard cookies). With <c>DataProtection:CertificatePath</c> (a .pfx, the same on every
    /// instance) the keys are encrypted with it before they are written, so the database alone no longer opens them;
    /// keys written before stay readable. Other protection (a cloud key vault) can be added with
    /// <c>ProtectKeysWith…</c> on the builder this returns (see README, "Keys at rest").
    /// </summary>
    public static IDataProtectionBuilder AddReferloopDataProtection(this IServiceCollection services, IConfiguration configuration)
    {
        var builder = services.AddDataProtection()
            .SetApplicationName(ApplicationName)
            .PersistKeysToDbContext<ReferloopDb>();
        if (configuration[CertificatePathSetting] is { Length: > 0 } path)
        {
            // Also registered for decryption, so this certificate need not be in the machine's certificate store.
            builder.ProtectKeysWithCertificate(LoadCertificate(path, configuration[CertificatePasswordSetting]));
        }
        return builder;
    }

    public static X509Certificate2 LoadCertificate(string path, string? password) =>
        X509CertificateLoader.LoadPkcs12FromFile(path, password);

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
