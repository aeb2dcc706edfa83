namespace Referloop.Webhooks;

/// <summary>
/// When to try again: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later (±10 % jitter so that
/// a receiver coming back is not hit by every queued message in the same second); after the 8th failure the
/// delivery is failed, unless it is retried until acknowledged (<see cref="WebhookEndpoint.RetryUntilAcknowledged"/>):
/// then every 10 h from there on.
/// </summary>
public static class RetrySchedule
{
    public static readonly TimeSpan[] Delays =
    [
        TimeSpan.Zero,
        TimeSpan.FromSeconds(5),
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(2),
        TimeSpan.FromHours(5),
        TimeSpan.FromHours(10),
        TimeSpan.FromHours(10),
    ];

    public const double Jitter = 0.1;

    public static int MaxAttempts => Delays.Length;

    /// <summary>
    /// The wait after attempt <paramref name="attemptsInRound"/> failed, or null when none is left; past the schedule's
    /// end, <paramref name="untilAcknowledged"/> keeps its last interval.
    /// </summary>
    public static TimeSpan? After(int attemptsInRound, bool untilAcknowledged = false) =>
        After(attemptsInRound, untilAcknowledged, (Random.Shared.NextDouble() * 2) - 1);

    /// <summary>As <see cref="After(int, bool)"/>, with the jitter given: <paramref name="jitter"/> in [-1, 1] scales ±10 %.</summary>
    public static TimeSpan? After(int attemptsInRound, bool untilAcknowledged, double jitter)
    {
        if (attemptsInRound >= Delays.Length && !untilAcknowledged)
        {
            return null;
        }
        var delay = Delays[Math.Min(attemptsInRound, Delays.Length - 1)];
        var factor = 1 + Math.Clamp(jitter, -1, 1) * Jitter;
        return TimeSpan.FromTicks((long)(delay.Ticks * factor));
    }

    /// <summary>Retry-After as seconds or an HTTP date, capped at the longest step of the schedule.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response, DateTimeOffset now)
    {
        var header = response.Headers.RetryAfter;
        TimeSpan? wait = header?.Delta ?? (header?.Date is { } date ? date - now : null);
        if (wait is not { } value)
        {
            return null;
        }
        return value < TimeSpan.Zero ? TimeSpan.Zero : value > Delays[^1] ? Delays[^1] : value;
    }
}
