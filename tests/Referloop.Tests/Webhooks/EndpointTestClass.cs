using Referloop.Tests.Support;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// A test class whose tests share one server and clock: each test starts a second after the last one ended (its new
/// endpoints then never receive an earlier test's messages), and removes the endpoints and receivers it made.
/// </summary>
public abstract class EndpointTestClass(WebhookApp app) : IClassFixture<WebhookApp>, IAsyncLifetime
{
    protected WebhookApp App { get; } = app;
    protected HttpClient Client { get; } = app.CreateAdminClient();
    protected List<string> Endpoints { get; } = [];
    protected List<Receiver> Receivers { get; } = [];

    public Task InitializeAsync()
    {
        App.Clock.Advance(TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var id in Endpoints)
        {
            await Client.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
        }
        foreach (var receiver in Receivers)
        {
            await receiver.DisposeAsync();
        }
    }
}
