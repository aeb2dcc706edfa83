using System.Diagnostics;

namespace Referloop.Hosting;

/// <summary>
/// Referloop's own spans, exported with the others when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. A write loop's
/// batch is a span of its own, linked to the requests it answers: a request's trace shows it waiting, the batch's
/// span what it waited for. Without a listener no span is made.
/// </summary>
public static class Telemetry
{
    public const string Name = "Referloop";

    public static readonly ActivitySource Activities = new(Name);

    /// <summary>The span of one batch of <see cref="Referrals.EventIngest"/>.</summary>
    public const string EventBatch = "event batch";
}
