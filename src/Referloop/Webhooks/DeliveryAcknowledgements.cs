using System.Text.Json;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Told when receivers acknowledged (2xx) <c>referral.approved</c> messages: rewards that wait for the
/// acknowledgement become payable then. Runs inside the transaction that records the successful attempts, on its
/// context, once for all the referrals of a batch, so it either commits with them or the deliveries are tried again.
/// It may be told of one referral more than once (several endpoints, replays), so it must be idempotent.
/// </summary>
public interface IAcknowledgementHandler
{
    Task OnReferralsApprovedAcknowledgedAsync(ReferloopDb db, IReadOnlyList<string> referralIds, CancellationToken ct);
}

/// <summary>Registers a plain delegate as an <see cref="IAcknowledgementHandler"/>.</summary>
public sealed class AcknowledgementCallback(Func<ReferloopDb, IReadOnlyList<string>, CancellationToken, Task> callback) : IAcknowledgementHandler
{
    public Task OnReferralsApprovedAcknowledgedAsync(ReferloopDb db, IReadOnlyList<string> referralIds, CancellationToken ct) =>
        callback(db, referralIds, ct);
}

public static class DeliveryAcknowledgements
{
    /// <summary>
    /// Calls every handler once with the referrals of the <c>referral.approved</c> messages among
    /// <paramref name="messages"/> (by their <c>data.referral.id</c>), in order, each once; returns whether there were any.
    /// </summary>
    public static async Task<bool> OnAcknowledgedAsync(IEnumerable<IAcknowledgementHandler> handlers, ReferloopDb db,
        IEnumerable<OutboxMessage> messages, CancellationToken ct)
    {
        var referralIds = messages.Where(m => m.Type == EventTypes.ReferralApproved)
            .Select(m => ReferralId(m.Data)).OfType<string>().Distinct().ToList();
        if (referralIds.Count == 0)
        {
            return false;
        }
        foreach (var handler in handlers)
        {
            await handler.OnReferralsApprovedAcknowledgedAsync(db, referralIds, ct);
        }
        return true;
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
