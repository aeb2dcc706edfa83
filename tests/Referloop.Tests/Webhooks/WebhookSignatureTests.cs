using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

public class WebhookSignatureTests
{
    [Fact]
    public void Signs_the_standard_webhooks_known_answer_vector()
    {
        var signature = WebhookSignature.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330, """{"test": 2432232314}""");

        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", signature);
    }

    [Fact]
    public void During_rotation_the_header_carries_one_signature_per_secret()
    {
        var header = WebhookSignature.Header(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", WebhookSignature.NewSecret()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, """{"test": 2432232314}""");

        var parts = header.Split(' ');
        Assert.Equal(2, parts.Length);
        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", parts[0]);
        Assert.StartsWith("v1,", parts[1]);
    }

    [Fact]
    public void New_secrets_are_valid_and_distinct()
    {
        var one = WebhookSignature.NewSecret();
        Assert.True(WebhookSignature.IsValidSecret(one));
        Assert.NotEqual(one, WebhookSignature.NewSecret());
        Assert.False(WebhookSignature.IsValidSecret("whsec_"));
        Assert.False(WebhookSignature.IsValidSecret("secret"));
    }
}
