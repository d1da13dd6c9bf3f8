using System.Net;
using System.Text;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

public sealed class SmokeTests
{
    [Fact]
    public async Task Gateway_answers_a_chat_completion_on_loopback()
    {
        await using var server = await GatewayServer.StartAsync();
        using var client = server.CreateClient();
        Assert.Equal("127.0.0.1", server.BaseAddress.Host);

        using var response = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"openclaw","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Built-in agent 'main' received: \\\"hi\\\"", await response.Content.ReadAsStringAsync());
    }
}
