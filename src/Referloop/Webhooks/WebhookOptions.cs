namespace Referloop.Webhooks;

/// <summary>The <c>Webhooks</c> configuration section.</summary>
public sealed class WebhookOptions
{
    /// <summary>
    /// Lets outbound calls reach loopback and private networks (tests, local development, private deployments): webhook
    /// endpoints and every other URL Referloop calls, such as create-coupon URLs.
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Whether this instance delivers. Several instances on one PostgreSQL share the work.</summary>
    public bool DeliveryEnabled { get; set; } = true;

    /// <summary>Bound on one HTTP attempt, connect to last byte read.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Requests in flight at once from this instance, over all endpoints.</summary>
    public int MaxConcurrency { get; set; } = 64;

    /// <summary>Requests in flight at once from this instance to one endpoint.</summary>
    public int MaxConcurrencyPerEndpoint { get; set; } = 8;

    /// <summary>
    /// Whether the event writer and the delivery recorder also store messages no enabled endpoint or e-mail takes, as a
    /// log of what was raised (written dispatched, never sent). Off by default: such a message goes nowhere, and for a
    /// shop without endpoints it would be most of what an event writes.
    /// </summary>
    public bool KeepUntakenMessages { get; set; }

    /// <summary>Outbox messages fanned out per transaction.</summary>
    public int FanOutBatchSize { get; set; } = 200;

    /// <summary>
    /// Fallback for the wake-up signal (a message written by another instance, a retry falling due). The hot path
    /// never waits for it: a write on this instance wakes the engine at once.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a claim holds unless renewed. The holder renews it four times a lease while it lives, so a dead
    /// instance's deliveries are picked up this long after its last renewal: a restart resumes them within seconds.
    /// </summary>
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Overlap of old and new secret after a rotation, unless the request says otherwise.</summary>
    public TimeSpan RotationOverlap { get; set; } = TimeSpan.FromHours(24);

    /// <summary>An endpoint that has failed without a single 2xx for this long is disabled.</summary>
    public TimeSpan DisableAfterFailingFor { get; set; } = TimeSpan.FromDays(5);

    /// <summary>Names this instance in claims; defaults to host name and process id plus a random suffix.</summary>
    public string? InstanceId { get; set; }
}
