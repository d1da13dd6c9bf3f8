using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Probes answer without auth, so orchestrators can call them.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class HealthTests(DefaultGatewayFixture fixture)
{
    [Fact]
    public async Task Healthz_is_200_without_auth()
    {
        using var client = fixture.Server.CreateClient(token: null);

        using var response = await client.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_is_200_once_started()
    {
        using var client = fixture.Server.CreateClient(token: null);

        using var response = await client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_turns_503_once_the_actor_system_has_terminated()
    {
        // A gateway of its own: this one loses its actor system.
        await using var server = await GatewayServer.StartAsync();
        using var client = server.CreateClient(token: null);
        Assert.Equal(HttpStatusCode.OK, await ReadyzStatusAsync(client));

        await server.ActorSystem.Terminate();

        await Eventually.TrueAsync(async () => await ReadyzStatusAsync(client) == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(10),
            "/readyz still answers 200 after the actor system terminated");
        using var notReady = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        // Akka.Hosting stops the application when its actor system terminates, so either reason may be given.
        Assert.Contains(await notReady.Content.ReadAsStringAsync(), new[] { "stopping", "actor system stopped" });
    }

    [Fact]
    public async Task A_chat_request_after_the_actor_system_terminated_is_answered_503_with_Retry_After_at_once()
    {
        await using var server = await GatewayServer.StartAsync();
        using var client = server.CreateClient();
        await server.ActorSystem.Terminate();
        await Eventually.TrueAsync(async () => await ReadyzStatusAsync(client) == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(10),
            "/readyz still answers 200 after the actor system terminated");

        // No actor will ever answer the turn: the request must still end, not wait out the run timeout
        // (600 s by default). The client gives up after the bound, so a hang fails fast instead of holding the server's stop.
        using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        using var request = ChatApi.Request(ChatApi.Body("anyone there?"));
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, giveUp.Token);
        }
        catch (OperationCanceledException) when (giveUp.IsCancellationRequested)
        {
            Assert.Fail("a chat request after the actor system terminated got no answer within 5 s");
            throw;
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
            Assert.Contains("\"type\":\"api_error\"", body);
        }
    }

    private static async Task<HttpStatusCode> ReadyzStatusAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/readyz");
        return response.StatusCode;
    }
}
