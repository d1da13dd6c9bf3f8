using System.Net;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Spec §3: the auth modes, where secrets come from, and the bearer header. Each row starts a gateway
/// with one config (and command-line settings standing in for the environment) and sends it bearers:
/// <c>null</c> sends no <c>Authorization</c> header at all.
/// </summary>
public sealed class AuthenticationTests
{
    /// <summary>An empty value hides a real OPENCLAW_GATEWAY_* variable of the machine running the tests.</summary>
    private static readonly string[] NoEnvironment = ["--OPENCLAW_GATEWAY_TOKEN=", "--OPENCLAW_GATEWAY_PASSWORD="];

    private const string Endpoint = "http: { endpoints: { chatCompletions: { enabled: true } } }";

    public static TheoryData<string, string, string[], string?[], string?[]> Modes => new()
    {
        {
            "token mode: the token is the bearer",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'token', token: 'tok' }} }} }}", [],
            ["Bearer tok", "bearer    tok   ", "  BEARER\ttok"],
            ["Bearer wrong", "Bearer", "Basic dG9r", "tok", "Bearer tok extra", null]
        },
        {
            "password mode: the password is the bearer, the token is not",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'password', password: 'pw', token: 'tok' }} }} }}", [],
            ["Bearer pw", "bearer  pw "],
            ["Bearer tok", "Bearer PW", null]
        },
        {
            "none mode: no auth at all",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'none' }} }} }}", [],
            [null, "Bearer anything", "Basic whatever"],
            []
        },
        {
            "mode unset with a password set: password mode",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ password: 'pw', token: 'tok' }} }} }}", [],
            ["Bearer pw"],
            ["Bearer tok", null]
        },
        {
            "mode unset with only a token: token mode",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ token: 'tok' }} }} }}", [],
            ["Bearer tok"],
            ["Bearer pw", null]
        },
        {
            "mode unset and a password only in OPENCLAW_GATEWAY_PASSWORD: password mode",
            $"{{ gateway: {{ port: 0, {Endpoint} }} }}", ["--OPENCLAW_GATEWAY_TOKEN=", "--OPENCLAW_GATEWAY_PASSWORD=env-pw"],
            ["Bearer env-pw"],
            ["Bearer wrong", null]
        },
        {
            "no token in the config: OPENCLAW_GATEWAY_TOKEN",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'token' }} }} }}", ["--OPENCLAW_GATEWAY_TOKEN=env-tok"],
            ["Bearer env-tok"],
            ["Bearer tok", null]
        },
        {
            "a token in the config beats OPENCLAW_GATEWAY_TOKEN",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'token', token: 'config-tok' }} }} }}", ["--OPENCLAW_GATEWAY_TOKEN=env-tok"],
            ["Bearer config-tok"],
            ["Bearer env-tok"]
        },
        {
            "no password in the config: OPENCLAW_GATEWAY_PASSWORD",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'password' }} }} }}", ["--OPENCLAW_GATEWAY_PASSWORD=env-pw"],
            ["Bearer env-pw"],
            ["Bearer wrong", null]
        },
        {
            "a password in the config beats OPENCLAW_GATEWAY_PASSWORD",
            $"{{ gateway: {{ port: 0, {Endpoint}, auth: {{ mode: 'password', password: 'config-pw' }} }} }}", ["--OPENCLAW_GATEWAY_PASSWORD=env-pw"],
            ["Bearer config-pw"],
            ["Bearer env-pw"]
        },
    };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Right_bearers_get_in_and_wrong_or_missing_ones_get_the_exact_401(
        string rule, string config, string[] environment, string?[] allowed, string?[] refused)
    {
        await using var server = await GatewayServer.StartAsync(config, [.. NoEnvironment, .. environment]);
        using var client = server.CreateClient(token: null);

        foreach (var authorization in allowed)
        {
            using var response = await client.SendAsync(Http.Request(HttpMethod.Post, Http.Completions, Http.UserSays("hi"), authorization));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{rule}: '{authorization}' got {(int)response.StatusCode}");
        }
        foreach (var authorization in refused)
        {
            using var response = await client.SendAsync(Http.Request(HttpMethod.Post, Http.Completions, Http.UserSays("hi"), authorization));
            await Http.AssertJsonBodyAsync(response, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
        }
    }

    [Theory]
    [InlineData("{ gateway: { port: 0, auth: { mode: 'token' } } }", "gateway.auth.token")]
    [InlineData("{ gateway: { port: 0 } }", "gateway.auth.token")]
    [InlineData("{ gateway: { port: 0, auth: { mode: 'password', token: 'tok' } } }", "gateway.auth.password")]
    [InlineData("{ gateway: { port: 0, auth: { mode: 'magic', token: 'tok' } } }", "gateway.auth.mode")]
    public async Task The_gateway_refuses_to_start_when_the_mode_has_no_secret(string config, string key)
    {
        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(config, NoEnvironment));

        Assert.Contains(key, refused.Message);
    }
}
