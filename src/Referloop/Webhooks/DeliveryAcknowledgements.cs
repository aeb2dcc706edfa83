using System.Text.Json;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Told when a receiver acknowledged (2xx) a <c>referral.approved</c> message: rewards that wait for the
/// acknowledgement become payable then. Runs inside the transaction that records the successful attempt, on that
/// attempt's context, so it either commits with it or the delivery is tried again. It may be called more than once
/// for one referral (several endpoints, replays), so it must be idempotent.
/// </summary>
public interface IAcknowledgementHandler
{
    Task OnReferralApprovedAcknowledgedAsync(ReferloopDb db, string referralId, CancellationToken ct);
}

/// <summary>Registers a plain delegate as an <see cref="IAcknowledgementHandler"/>.</summary>
public sealed class AcknowledgementCallback(Func<ReferloopDb, string, CancellationToken, Task> callback) : IAcknowledgementHandler
{
    public Task OnReferralApprovedAcknowledgedAsync(ReferloopDb db, string referralId, CancellationToken ct) => callback(db, referralId, ct);
}

public static class DeliveryAcknowledgements
{
    /// <summary>Calls every handler when <paramref name="message"/> is a <c>referral.approved</c> with a <c>data.referral.id</c>.</summary>
    public static async Task OnAcknowledgedAsync(IEnumerable<IAcknowledgementHandler> handlers, ReferloopDb db, OutboxMessage message,
        CancellationToken ct)
    {
        if (message.Type != EventTypes.ReferralApproved || ReferralId(message.Data) is not { } referralId)
        {
            return;
        }
        foreach (var handler in handlers)
        {
            await handler.OnReferralApprovedAcknowledgedAsync(db, referralId, ct);
        }
    }

    public static string? ReferralId(string data)
    {
        using var json = JsonDocument.Parse(data);
        return json.RootElement.ValueKind == JsonValueKind.Object
            && json.RootElement.TryGetProperty("referral", out var referral)
            && referral.ValueKind == JsonValueKind.Object
            && referral.TryGetProperty("id", out var id)
            && id.ValueKind == JsonValueKind.String
                ? id.GetString()
                : null;
    }
}
