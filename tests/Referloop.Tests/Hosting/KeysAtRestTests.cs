using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Hosting;

/// <summary>
/// <c>DataProtection:CertificatePath</c>: the key ring in the database is encrypted with the certificate, and a new
/// process with the same certificate reads it back (it signs with an Ed25519 key the first process stored).
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class KeysAtRestTests
{
    [Fact]
    public async Task With_a_certificate_the_key_ring_is_encrypted_and_a_restarted_instance_reads_it_back()
    {
        var certificate = Path.Combine(Path.GetTempPath(), $"referloop_dp_{Guid.NewGuid():N}.pfx");
        try
        {
            using (var rsa = RSA.Create(2048))
            {
                var signingRequest = new CertificateRequest("CN=Referloop Data Protection", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                using var created = signingRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
                await File.WriteAllBytesAsync(certificate, created.Export(X509ContentType.Pfx, "pfx-password"));
            }
            var settings = new Dictionary<string, string>
            {
                ["DataProtection:CertificatePath"] = certificate,
                ["DataProtection:CertificatePassword"] = "pfx-password",
            };
            await using var database = await ProcessDatabase.CreateAsync();
            await using var receiver = await Receiver.StartAsync();

            string endpoint;
            await using (var first = await ServerProcess.StartAsync(database, settings))
            {
                using var client = first.CreateAdminClient();
                var created = await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), signing = "ed25519" });
                endpoint = (string)created["id"]!;
                Assert.DoesNotContain("No XML encryptor configured", first.Output);
            }

            var ring = await database.WithDb(db => db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync());
            var key = Assert.Single(ring);
            Assert.Contains("<encryptedSecret", key);
            Assert.DoesNotContain("<masterKey", key);

            await using (var second = await ServerProcess.StartAsync(database, settings))
            {
                using var client = second.CreateAdminClient();
                await client.PostOk($"/api/v1/webhook-endpoints/{endpoint}/test", new { eventType = "referral.created" }, System.Net.HttpStatusCode.OK);
            }
            var request = Assert.Single(receiver.Requests);
            Assert.StartsWith("v1a,", request.Header("webhook-signature"));
            Assert.Single(await database.WithDb(db => db.DataProtectionKeys.AsNoTracking().ToListAsync()));
        }
        finally
        {
            File.Delete(certificate);
        }
    }
}
