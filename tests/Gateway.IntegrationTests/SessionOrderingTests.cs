using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Turns of one session run one at a time, in arrival order (spec §5); a later one waits, it is not rejected.</summary>
public sealed class SessionOrderingTests(SlowGatewayFixture fixture) : IClassFixture<SlowGatewayFixture>
{
    [Fact]
    public async Task Concurrent_streams_on_one_session_are_serialised()
    {
        using var client = fixture.Server.CreateClient();
        var user = $"queue-{Guid.NewGuid():N}";

        // The first turn has started (its role chunk is in) before the second is sent, so it is first in line.
        using var first = await ChatApi.StartStreamAsync(client, ChatApi.Body("first in line", user: user));
        await using var firstEvents = ChatApi.EventsAsync(first).GetAsyncEnumerator();
        Assert.True(await firstEvents.MoveNextAsync());
        var secondReply = Task.Run(async () =>
        {
            using var second = await ChatApi.StartStreamAsync(client, ChatApi.Body("second in line", user: user));
            return await ChatApi.StreamedReplyAsync(second);
        });
        var firstReply = new System.Text.StringBuilder();
        while (await firstEvents.MoveNextAsync() && firstEvents.Current.Data != "[DONE]")
            firstReply.Append(ChatApi.ContentOf(firstEvents.Current.Data));

        Assert.Equal(ChatApi.FreshReply("first in line"), firstReply.ToString());
        var reply = await Eventually.WithinAsync(secondReply, TimeSpan.FromSeconds(15), "the second turn runs after the first");
        Assert.Equal($"Built-in agent 'main' received: \"second in line\". {ChatApi.OneEarlierTurn("first in line")}", reply);
    }
}
