using System.Text.Json.Nodes;

namespace Referloop.Tests.Hosting;

/// <summary>
/// The runtime settings the server ships with, read from its built <c>Referloop.runtimeconfig.json</c>: a property
/// misspelt in the project file is ignored by the SDK without a word (the server once ran with server GC that way).
/// </summary>
public class RuntimeSettingsTests
{
    private static JsonObject ConfigProperties()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Referloop.runtimeconfig.json");
        Assert.True(File.Exists(path), $"{path} is missing");
        var config = JsonNode.Parse(File.ReadAllText(path))!;
        return config["runtimeOptions"]!["configProperties"]!.AsObject();
    }

    [Fact]
    public void The_server_runs_with_workstation_gc_and_without_profile_guided_tiering()
    {
        var properties = ConfigProperties();

        // A sidecar next to the shop: server GC's per-core heaps cost far more memory than they buy (docs/performance.md).
        Assert.False((bool)properties["System.GC.Server"]!);
        Assert.False((bool)properties["System.Runtime.TieredPGO"]!);
    }
}
