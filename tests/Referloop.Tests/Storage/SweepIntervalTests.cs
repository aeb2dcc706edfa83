using Microsoft.Extensions.Configuration;
using Referloop.Storage;

namespace Referloop.Tests.Storage;

public class SweepIntervalTests
{
    [Theory]
    [InlineData(null, 60)]
    [InlineData("15", 15)]
    [InlineData("0", null)]
    [InlineData("-5", null)]
    [InlineData("5256000", 30 * 24 * 60)] // ten years: longer than a timer waits, so every 30 days
    public void A_sweep_runs_every_so_many_minutes_within_what_a_timer_can_wait_or_never(string? setting, int? minutes)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Retention:SweepIntervalMinutes"] = setting })
            .Build();

        var interval = SweepInterval.Read(configuration, "Retention:SweepIntervalMinutes");

        Assert.Equal(minutes is null ? null : TimeSpan.FromMinutes(minutes.Value), interval);
        Assert.True(interval is null || interval.Value.TotalMilliseconds < uint.MaxValue - 1, "Task.Delay takes it");
    }
}
