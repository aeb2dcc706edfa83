namespace Referloop.Hosting;

/// <summary>The write loops (events, accepted events, share-link visits, attempt results) start with their first job.</summary>
internal static class Loops
{
    /// <summary>
    /// <paramref name="loop"/>, started by the first to ask for the value, outside that caller's execution context: the
    /// loop outlives the request that started it, and carries neither its span nor its scope's values.
    /// </summary>
    public static Lazy<Task> StartedOnFirstUse(Func<Task> loop) => new(() =>
    {
        using (ExecutionContext.SuppressFlow())
        {
            return Task.Run(loop);
        }
    });
}
