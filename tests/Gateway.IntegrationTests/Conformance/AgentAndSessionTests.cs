using System.Net;
using System.Text.Json;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §4 and §5: which agent answers, the model echoed back, and the session keys.</summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class AgentAndSessionTests(ConformanceGateway gateway)
{
    private const string InvalidModel = "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.";
    private const string ReservedKey = "`x-openclaw-session-key` cannot use reserved internal session namespaces.";

    public static TheoryData<string?, string> ModelForms => new()
    {
        { null, "main" },
        { "openclaw", "main" },
        { "OpenClaw", "main" },
        { "openclaw/default", "main" },
        { "OPENCLAW/Default", "main" },
        { " openclaw ", "main" },
        { "openclaw/main", "main" },
        { "openclaw/beta", "beta" },
        { "OpenClaw/BETA", "beta" },
        { "openclaw:beta", "beta" },
        { "OPENCLAW:beta", "beta" },
        { "agent:beta", "beta" },
        { "Agent:Main", "main" },
    };

    [Theory]
    [MemberData(nameof(ModelForms))]
    public async Task Every_model_form_picks_its_agent_and_the_model_is_echoed_as_sent(string? model, string agent)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, Http.UserSays("who are you?", model));

        Assert.Equal(Http.EchoOf("who are you?", agent), await Http.ReplyAsync(response));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(model ?? "openclaw", json.RootElement.GetProperty("model").GetString());
    }

    public static TheoryData<string> InvalidModels =>
    [
        "", "gpt-4o", "claw", "openclaw/", "openclaw:", "agent:", "openclaw/Bad Id", "openclaw/-dash-first", "openclaw/_under",
        "openclaw/a.b", "agent:main:extra", "openclaw/" + new string('a', 65), "openclaw-main", "default",
    ];

    [Theory]
    [MemberData(nameof(InvalidModels))]
    public async Task Any_other_model_string_is_400(string model)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, Http.UserSays("hi", model));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidModel, "invalid_request_error");
    }

    [Theory]
    [InlineData("openclaw/ghost", null, "ghost")]
    [InlineData("agent:Ghost", null, "ghost")]
    [InlineData("openclaw:" + "a123456789b123456789c123456789d123456789e123456789f123456789abcd", null, "a123456789b123456789c123456789d123456789e123456789f123456789abcd")]
    [InlineData("openclaw", "ghost", "ghost")]
    [InlineData("openclaw/beta", "GHOST", "ghost")]
    public async Task An_agent_that_is_not_configured_is_400(string model, string? header, string id)
    {
        using var client = gateway.Client();
        (string, string)[] headers = header is null ? [] : [("x-openclaw-agent-id", header)];

        using var response = await Http.PostAsync(client, Http.UserSays("hi", model), headers);

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, $"Unknown agent '{id}'.", "invalid_request_error");
    }

    [Theory]
    [InlineData("openclaw/main", "beta", "beta")]
    [InlineData("gpt-4o", "beta", "beta")]
    [InlineData(null, " Beta ", "beta")]
    [InlineData("openclaw/beta", "", "beta")]
    public async Task The_agent_header_comes_before_the_model(string? model, string header, string agent)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, Http.UserSays("hi", model), ("x-openclaw-agent-id", header));

        Assert.Equal(Http.EchoOf("hi", agent), await Http.ReplyAsync(response));
    }

    public static TheoryData<string> ReservedKeys =>
    [
        "subagent:worker", "cron:nightly", "acp:x", "SUBAGENT:x", "agent:main:subagent:1", "agent:beta:cron:daily",
        "agent:main:acp:thread", "Agent:Main:CRON:x", "  cron:padded",
    ];

    [Theory]
    [MemberData(nameof(ReservedKeys))]
    public async Task A_session_key_in_a_reserved_namespace_is_400(string key)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, Http.UserSays("hi"), ("x-openclaw-session-key", key));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, ReservedKey, "invalid_request_error");
    }

    [Theory]
    [InlineData("my-own-key")]
    [InlineData("agent:main:openai-user:somebody")]
    [InlineData("agent:main:cronjob")]
    [InlineData("team:subagent:x")]
    public async Task Other_session_keys_are_accepted(string key)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, Http.UserSays("hi"), ("x-openclaw-session-key", $"{key}-{Guid.NewGuid():N}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Without_user_or_key_every_request_is_a_fresh_session()
    {
        using var client = gateway.Client();

        foreach (var text in (string[])["one", "two"])
        {
            using var response = await Http.PostAsync(client, Http.UserSays(text));
            Assert.Equal(Http.EchoOf(text), await Http.ReplyAsync(response));
        }
    }

    [Fact]
    public async Task The_same_user_lowercased_shares_one_session()
    {
        using var client = gateway.Client();
        var user = $"Ada-{Guid.NewGuid():N}";

        using var first = await Http.PostAsync(client, $$"""{"user":"{{user}}","messages":[{"role":"user","content":"my name is Ada"}]}""");
        using var second = await Http.PostAsync(client, $$"""{"user":"{{user.ToUpperInvariant()}}","messages":[{"role":"user","content":"who am I?"}]}""");

        await Http.ReplyAsync(first);
        Assert.EndsWith(ChatApi.OneEarlierTurn("my name is Ada"), await Http.ReplyAsync(second));
    }

    [Fact]
    public async Task The_session_key_header_beats_user()
    {
        using var client = gateway.Client();
        var key = $"shared-{Guid.NewGuid():N}";

        using var first = await Http.PostAsync(client, $$"""{"user":"u-{{Guid.NewGuid():N}}","messages":[{"role":"user","content":"remember me"}]}""", ("x-openclaw-session-key", key));
        using var second = await Http.PostAsync(client, $$"""{"user":"u-{{Guid.NewGuid():N}}","messages":[{"role":"user","content":"again"}]}""", ("x-openclaw-session-key", key));

        await Http.ReplyAsync(first);
        Assert.EndsWith(ChatApi.OneEarlierTurn("remember me"), await Http.ReplyAsync(second));
    }
}

/// <summary>Spec §4: the default agent is the one marked default, else the first listed, else <c>main</c>.</summary>
public sealed class DefaultAgentTests
{
    [Theory]
    [InlineData("list: [ { id: 'alpha' }, { id: 'beta', default: true } ]", "beta")]
    [InlineData("list: [ { id: 'alpha' }, { id: 'beta' } ]", "alpha")]
    [InlineData("defaults: { timeoutSeconds: 60 }", "main")]
    public async Task The_default_agent_answers_openclaw(string agents, string agent)
    {
        await using var server = await GatewayServer.StartAsync($$"""
            {
              gateway: { port: 0, auth: { token: 'test-token' }, http: { endpoints: { chatCompletions: { enabled: true } } } },
              agents: { {{agents}} },
            }
            """);
        using var client = server.CreateClient();

        foreach (var model in (string[])["openclaw", "openclaw/default"])
        {
            using var response = await Http.PostAsync(client, Http.UserSays("hi", model));
            Assert.Equal(Http.EchoOf("hi", agent), await Http.ReplyAsync(response));
        }
    }
}
