namespace Referloop.Webhooks;

/// <summary>
/// Wakes the delivery engine. A writer of outbox messages pokes it once its transaction has committed; many pokes
/// before it wakes collapse into one wake-up; polling stays as the fallback for work this instance did not write
/// (other instances, retries falling due).
/// </summary>
public sealed class OutboxSignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Poke()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already poked: the engine wakes once for all of them.
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);
}
