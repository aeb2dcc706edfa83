using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Standard Webhooks <c>v1a</c>: an endpoint created with <c>"signing": "ed25519"</c> is signed with a key pair whose
/// public half (<c>whpk_…</c>) is all a receiver needs; Node's own Ed25519 checks it.
/// </summary>
public class Ed25519SigningTests(WebhookApp app) : EndpointTestClass(app)
{
    private async Task<(Receiver Receiver, JsonObject Created)> Endpoint(string eventType, string format = "json")
    {
        var receiver = await Receiver.StartAsync();
        Receivers.Add(receiver);
        var created = await Client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url(), eventTypes = new[] { eventType }, format, signing = "ed25519" });
        Endpoints.Add((string)created["id"]!);
        return (receiver, created);
    }

    [Fact]
    public async Task Creating_an_ed25519_endpoint_answers_with_its_whpk_public_key_and_no_secret()
    {
        var (_, created) = await Endpoint(EventTypes.ReferralApproved);
        var id = (string)created["id"]!;
        var publicKey = (string)created["publicKey"]!;

        Assert.Equal("ed25519", (string)created["signing"]!);
        Assert.StartsWith("whpk_", publicKey);
        Assert.Equal(32, Convert.FromBase64String(publicKey["whpk_".Length..]).Length);
        Assert.Null(created["secret"]);

        var fetched = await Client.GetOk($"/api/v1/webhook-endpoints/{id}");
        Assert.Equal(publicKey, (string)fetched["publicKey"]!);
        Assert.Equal("ed25519", (string)fetched["signing"]!);
        var secret = await Client.GetOk($"/api/v1/webhook-endpoints/{id}/secret");
        Assert.Equal(publicKey, (string)secret["publicKey"]!);
        Assert.Null(secret["secret"]);

        // At rest the private key is a Data Protection payload, and the key ring that opens it is in the database.
        var stored = await App.Endpoint(id);
        Assert.True(Convert.FromBase64String(stored.PrivateKey!).Length > 64);
        Assert.True(await App.Db(db => db.DataProtectionKeys.AnyAsync()));

        var hmac = await Client.PostOk("/api/v1/webhook-endpoints", new { url = "http://127.0.0.1:9/hook" });
        Endpoints.Add((string)hmac["id"]!);
        Assert.Equal("hmac", (string)hmac["signing"]!);
        Assert.Null(hmac["publicKey"]);
    }

    [Theory]
    [InlineData("json", "referral.approved")]
    [InlineData("form", "reward.issued")]
    [InlineData("query", "conversion")]
    public async Task A_v1a_signature_verifies_in_node_with_only_the_public_key(string format, string type)
    {
        var (receiver, created) = await Endpoint(type, format);

        var messageId = await App.Publish(type);
        var request = await receiver.WaitForAsync(1);

        var signature = request.Header("webhook-signature");
        Assert.StartsWith("v1a,", signature);
        Assert.DoesNotContain(' ', signature);
        Assert.Equal(messageId, request.Header("webhook-id"));
        var node = await Node.VerifyEd25519((string)created["publicKey"]!, request);
        Assert.True((bool)node["ok"]!, node.ToJsonString());
        Assert.Equal(1, (int)node["verified"]!);
        Assert.True(WebhookKeys.Verify((string)created["publicKey"]!, messageId, long.Parse(request.Header("webhook-timestamp")),
            request.SignedContent, signature));
    }

    [Fact]
    public async Task A_tampered_body_or_another_key_fails_in_node()
    {
        var (receiver, created) = await Endpoint(EventTypes.ReferralVoided);
        var (_, other) = await Endpoint(EventTypes.ReferralQualified);

        await App.Publish(EventTypes.ReferralVoided);
        var request = await receiver.WaitForAsync(1);

        Assert.False((bool)(await Node.VerifyEd25519((string)other["publicKey"]!, request))["ok"]!);
        var tampered = request with { Body = request.Body.Replace("chargeback", "goodwill") };
        Assert.False((bool)(await Node.VerifyEd25519((string)created["publicKey"]!, tampered))["ok"]!);
    }

    [Fact]
    public async Task Rotation_signs_with_both_key_pairs_until_the_overlap_ends()
    {
        var (receiver, created) = await Endpoint(EventTypes.RewardBlocked);
        var id = (string)created["id"]!;
        var oldKey = (string)created["publicKey"]!;

        var rotated = await Client.PostOk($"/api/v1/webhook-endpoints/{id}/rotate-secret", new { overlapHours = 2 }, HttpStatusCode.OK);
        var newKey = (string)rotated["publicKey"]!;
        Assert.StartsWith("whpk_", newKey);
        Assert.NotEqual(oldKey, newKey);
        Assert.Equal(oldKey, (string)rotated["previousPublicKey"]!);
        Assert.Equal(App.Clock.GetUtcNow().AddHours(2), (DateTimeOffset)rotated["previousSecretExpiresAt"]!);
        Assert.Null(rotated["secret"]);
        var fetched = await Client.GetOk($"/api/v1/webhook-endpoints/{id}");
        Assert.Equal(newKey, (string)fetched["publicKey"]!);
        Assert.Equal(oldKey, (string)fetched["previousPublicKey"]!);

        await App.Publish(EventTypes.RewardBlocked);
        var during = await receiver.WaitForAsync(1);
        var signatures = during.Header("webhook-signature").Split(' ');
        Assert.Equal(2, signatures.Length);
        Assert.All(signatures, s => Assert.StartsWith("v1a,", s));
        // A receiver that still has only the old key keeps working, and so does one that already has the new key.
        Assert.Equal(1, (int)(await Node.VerifyEd25519(oldKey, during))["verified"]!);
        Assert.Equal(1, (int)(await Node.VerifyEd25519(newKey, during))["verified"]!);

        App.Clock.Advance(TimeSpan.FromHours(2) + TimeSpan.FromSeconds(1));
        await App.Publish(EventTypes.RewardBlocked);
        var after = await receiver.WaitForAsync(2);
        Assert.DoesNotContain(' ', after.Header("webhook-signature"));
        Assert.True((bool)(await Node.VerifyEd25519(newKey, after))["ok"]!);
        Assert.False((bool)(await Node.VerifyEd25519(oldKey, after))["ok"]!);
        Assert.Null((await Client.GetOk($"/api/v1/webhook-endpoints/{id}"))["previousPublicKey"]);
    }

    [Fact]
    public async Task Signing_must_be_hmac_or_ed25519_and_cannot_change_later()
    {
        var response = await Client.PostAsJsonAsync("/api/v1/webhook-endpoints", new { url = "http://127.0.0.1:9/hook", signing = "rsa" });
        await response.AssertValidationProblem("signing");

        var (receiver, created) = await Endpoint(EventTypes.ReferralCreated);
        var id = (string)created["id"]!;
        var put = await Client.PutAsJsonAsync($"/api/v1/webhook-endpoints/{id}", new { url = receiver.Url(), signing = "hmac" });
        await put.AssertValidationProblem("signing");

        // A PUT that leaves signing out (or repeats it) keeps the key pair.
        var kept = await Client.PutAsJsonAsync($"/api/v1/webhook-endpoints/{id}", new { url = receiver.Url(), description = "CRM" });
        kept.EnsureStatus(HttpStatusCode.OK);
        Assert.Equal((string)created["publicKey"]!, (string)(await kept.ReadJson())["publicKey"]!);
    }

    [Fact]
    public async Task A_test_message_to_an_ed25519_endpoint_is_signed_v1a()
    {
        var (receiver, created) = await Endpoint(EventTypes.ParticipantJoined);

        await Client.PostOk($"/api/v1/webhook-endpoints/{created["id"]}/test", new { eventType = "message.attempt.exhausted" }, HttpStatusCode.OK);

        var request = await receiver.WaitForAsync(1);
        Assert.Equal("message.attempt.exhausted", (string)JsonNode.Parse(request.Body)!["type"]!);
        Assert.True((bool)(await Node.VerifyEd25519((string)created["publicKey"]!, request))["ok"]!);
    }
}
