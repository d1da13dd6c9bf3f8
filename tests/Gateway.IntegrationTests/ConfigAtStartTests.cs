using System.Net;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Gateway.IntegrationTests;

/// <summary>The config file as the gateway reads it at start (spec §2, §3): refused when invalid, naming the key.</summary>
public sealed class ConfigAtStartTests
{
    private const string Enabled = "http: { endpoints: { chatCompletions: { enabled: true } } }";

    // An empty value on the command line beats any OPENCLAW_GATEWAY_TOKEN the test process may have.
    private const string NoEnvironmentToken = "--OPENCLAW_GATEWAY_TOKEN=";

    [Theory]
    [InlineData("{ gateway: { port: 'abc', auth: { token: 't' } } }", "gateway.port")]
    [InlineData("{ gateway: { port: 0, auth: { token: 't' } }, agents: { list: [ { id: 'Not an id!' } ] } }", "agents.list[0].id")]
    [InlineData("{ gateway: { port: 0, auth: { mode: 'token' } } }", "gateway.auth.token")]
    public async Task Invalid_config_refuses_to_start_naming_the_key(string config, string key)
    {
        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(config, NoEnvironmentToken));

        Assert.Contains(key, refused.Message);
    }

    [Fact]
    public async Task Token_comes_from_the_environment_when_the_config_has_none()
    {
        await using var server = await GatewayServer.StartAsync(
            $"{{ gateway: {{ port: 0, auth: {{ mode: 'token' }}, {Enabled} }} }}", "--OPENCLAW_GATEWAY_TOKEN=env-token");

        Assert.Equal(HttpStatusCode.OK, await StatusWithTokenAsync(server, "env-token"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusWithTokenAsync(server, GatewayServer.Token));
    }

    [Fact]
    public async Task Config_token_wins_over_the_environment()
    {
        await using var server = await GatewayServer.StartAsync(
            $"{{ gateway: {{ port: 0, auth: {{ mode: 'token', token: 'config-token' }}, {Enabled} }} }}", "--OPENCLAW_GATEWAY_TOKEN=env-token");

        Assert.Equal(HttpStatusCode.OK, await StatusWithTokenAsync(server, "config-token"));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusWithTokenAsync(server, "env-token"));
    }

    [Fact]
    public async Task Unknown_keys_are_ignored()
    {
        await using var server = await GatewayServer.StartAsync($$"""
            {
              gateway: { port: 0, auth: { token: 'test-token' }, {{Enabled}}, controlUi: { enabled: true } },
              channels: { telegram: { enabled: true, botToken: '123:abc', allowFrom: ['@me'] } },
              agents: { list: [ { id: 'main', identity: { name: 'Claw', emoji: '🦞' } } ] },
              plugins: [ 'x', { y: 1 } ],
            }
            """);

        Assert.Equal(HttpStatusCode.OK, await StatusWithTokenAsync(server, GatewayServer.Token));
    }

    [Fact]
    public async Task Json5_comments_single_quotes_unquoted_keys_and_trailing_commas_load()
    {
        await using var server = await GatewayServer.StartAsync("""
            // The gateway's own settings.
            {
              /* a block
                 comment */
              gateway: {
                port: 0,
                'auth': { mode: 'token', token: 'json5-token', },
                "http": { endpoints: { chatCompletions: { enabled: true, }, }, },
              },
              agents: { list: [ { id: 'five', default: true, }, ], },
            }
            """);
        using var client = server.CreateClient("json5-token");

        var reply = await ChatApi.CompleteAsync(client, ChatApi.Body("json5?"));

        Assert.Equal(ChatApi.FreshReply("json5?", agent: "five"), reply);
    }

    private static async Task<HttpStatusCode> StatusWithTokenAsync(GatewayServer server, string token)
    {
        using var client = server.CreateClient(token);
        using var response = await client.SendAsync(ChatApi.Request(ChatApi.Body("who goes there?")));
        return response.StatusCode;
    }
}
