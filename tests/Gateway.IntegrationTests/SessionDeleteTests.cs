using System.Net;
using System.Text.Json.Nodes;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary><c>DELETE /v1/sessions/{key}</c>: an operator forgets one session, in memory and in the store.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class SessionDeleteTests(DefaultGatewayFixture fixture)
{
    [Fact]
    public async Task Deleting_a_users_session_forgets_its_history_and_only_its_own()
    {
        using var client = fixture.Server.CreateClient();
        var ada = $"ada-{Guid.NewGuid():N}";
        var bob = $"bob-{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("ada's secret", user: ada));
        await ChatApi.CompleteAsync(client, ChatApi.Body("bob's note", user: bob));

        using var deleted = await client.DeleteAsync($"/v1/sessions/{Uri.EscapeDataString($"agent:main:openai-user:{ada}")}");

        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        var body = JsonNode.Parse(await deleted.Content.ReadAsStringAsync())!;
        Assert.Equal("session.deleted", (string?)body["object"]);
        Assert.Equal($"agent:main:openai-user:{ada}", (string?)body["id"]);
        Assert.True((bool?)body["deleted"]);
        Assert.Contains(ChatApi.NoEarlierTurns, await ChatApi.CompleteAsync(client, ChatApi.Body("anything left?", user: ada)));
        Assert.Contains(ChatApi.OneEarlierTurn("bob's note"), await ChatApi.CompleteAsync(client, ChatApi.Body("and mine?", user: bob)));
    }

    [Fact]
    public async Task A_session_key_is_deleted_by_its_key()
    {
        using var client = fixture.Server.CreateClient();
        var key = $"team/{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("keyed"), sessionKey: key);

        using var deleted = await client.DeleteAsync($"/v1/sessions/{Uri.EscapeDataString(key)}");

        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Contains(ChatApi.NoEarlierTurns, await ChatApi.CompleteAsync(client, ChatApi.Body("again"), sessionKey: key));
    }

    [Fact]
    public async Task Deleting_needs_the_token_and_changes_nothing_without_it()
    {
        using var client = fixture.Server.CreateClient();
        using var anonymous = fixture.Server.CreateClient(token: null);
        var user = $"kept-{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("keep me", user: user));

        using var refused = await anonymous.DeleteAsync($"/v1/sessions/{Uri.EscapeDataString($"agent:main:openai-user:{user}")}");

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains(ChatApi.OneEarlierTurn("keep me"), await ChatApi.CompleteAsync(client, ChatApi.Body("still there?", user: user)));
    }

    [Fact]
    public async Task Only_DELETE_is_allowed()
    {
        using var client = fixture.Server.CreateClient();

        using var response = await client.GetAsync("/v1/sessions/some-key");

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal("DELETE", response.Content.Headers.Allow.Single());
    }
}
