using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Referloop.Hosting;

/// <summary>
/// Referloop's own spans and metrics, exported with the others when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (and the
/// metrics at <c>/metrics</c> with <c>Metrics:Prometheus</c>). A write loop's batch is a span of its own, linked to the
/// requests it answers: a request's trace shows it waiting, the batch's span what it waited for. Without a listener no
/// span is made.
/// </summary>
public static class Telemetry
{
    public const string Name = "Referloop";

    public static readonly ActivitySource Activities = new(Name);

    private static readonly Meter Meter = new(Name);

    /// <summary>
    /// Units of work of the referral engine (a batch of events, a referral command) run again from a fresh read after
    /// losing a race, by <c>reason</c>: <c>concurrent_change</c> (a row it read changed), <c>unread_repeat</c> (a batch
    /// met a repeat it had not looked for), <c>busy</c> (SQLite), <c>unique_violation</c>, <c>foreign_key_violation</c>,
    /// <c>serialization</c>, <c>deadlock</c> (PostgreSQL), <c>update_conflict</c>. Two instances busy with the same
    /// advocates lose some races; a deadlock means two writers locked the same rows in different orders, which none of
    /// Referloop's do.
    /// </summary>
    public static readonly Counter<long> Reruns = Meter.CreateCounter<long>("referloop.write.reruns", "{rerun}",
        "Units of work of the referral engine run again from a fresh read after losing a race, by reason");

    /// <summary>The span of one batch of <see cref="Referrals.EventIngest"/>.</summary>
    public const string EventBatch = "event batch";
}
