using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>How requests map to agent sessions (spec §5): stateless by default, shared by <c>user</c> or the session-key header.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class SessionTests(DefaultGatewayFixture fixture)
{
    private static string NewUser() => $"user-{Guid.NewGuid():N}";

    [Fact]
    public async Task Same_user_shares_a_session_so_the_agent_sees_the_earlier_turn()
    {
        using var client = fixture.Server.CreateClient();
        var user = NewUser();

        await ChatApi.CompleteAsync(client, ChatApi.Body("my first message", user: user));
        var second = await ChatApi.CompleteAsync(client, ChatApi.Body("my second message", user: user));

        Assert.Equal($"Built-in agent 'main' received: \"my second message\". {ChatApi.OneEarlierTurn("my first message")}", second);
    }

    [Fact]
    public async Task User_is_matched_case_insensitively()
    {
        using var client = fixture.Server.CreateClient();
        var user = NewUser();

        await ChatApi.CompleteAsync(client, ChatApi.Body("hello", user: user.ToUpperInvariant()));
        var second = await ChatApi.CompleteAsync(client, ChatApi.Body("again", user: user));

        Assert.Contains(ChatApi.OneEarlierTurn("hello"), second);
    }

    [Fact]
    public async Task Without_user_each_call_is_stateless()
    {
        using var client = fixture.Server.CreateClient();

        await ChatApi.CompleteAsync(client, ChatApi.Body("stateless one"));
        var second = await ChatApi.CompleteAsync(client, ChatApi.Body("stateless two"));

        Assert.Equal(ChatApi.FreshReply("stateless two"), second);
    }

    [Fact]
    public async Task Session_key_header_shares_a_session()
    {
        using var client = fixture.Server.CreateClient();
        var key = $"test:{Guid.NewGuid():N}";

        await ChatApi.CompleteAsync(client, ChatApi.Body("keyed first"), sessionKey: key);
        var second = await ChatApi.CompleteAsync(client, ChatApi.Body("keyed second"), sessionKey: key);

        Assert.Contains(ChatApi.OneEarlierTurn("keyed first"), second);
    }

    [Fact]
    public async Task Different_users_do_not_share_a_session()
    {
        using var client = fixture.Server.CreateClient();

        await ChatApi.CompleteAsync(client, ChatApi.Body("from alice", user: NewUser()));
        var other = await ChatApi.CompleteAsync(client, ChatApi.Body("from bob", user: NewUser()));

        Assert.Equal(ChatApi.FreshReply("from bob"), other);
    }

    [Fact]
    public async Task Streamed_turns_are_remembered_like_non_streamed_ones()
    {
        using var client = fixture.Server.CreateClient();
        var user = NewUser();

        using (var first = await ChatApi.StartStreamAsync(client, ChatApi.Body("streamed first", user: user)))
            Assert.Equal(ChatApi.FreshReply("streamed first"), await ChatApi.StreamedReplyAsync(first));
        var second = await ChatApi.CompleteAsync(client, ChatApi.Body("then plain", user: user));

        Assert.Contains(ChatApi.OneEarlierTurn("streamed first"), second);
    }
}
