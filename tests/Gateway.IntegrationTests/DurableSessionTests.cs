using System.Net.ServerSentEvents;
using System.Text.Json;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>
/// Durable sessions across a crash: the real gateway as a child process on the default SQLite store (under
/// <c>OPENCLAW_STATE_DIR</c>), killed with SIGKILL and started again on the same state folder. A turn whose answer
/// ended is in the journal; a turn cut by the crash is not.
/// </summary>
public sealed class DurableSessionTests : IDisposable
{
    private readonly string _stateDirectory = Directory.CreateTempSubdirectory("gateway-durable-").FullName;

    /// <summary>
    /// Token auth, the endpoint on, agents <c>main</c> (fast, the default) and <c>slow</c> (50 pieces 200 ms apart:
    /// about 10 s a reply, so a kill lands in the middle of it); <paramref name="sessions"/> goes under <c>gateway</c>.
    /// </summary>
    public static string Config(int port, string sessions = "") => $$"""
        {
          gateway: {
            port: {{port}},
            auth: { mode: 'token', token: '{{GatewayServer.Token}}' },
            http: { endpoints: { chatCompletions: { enabled: true } } },
            {{sessions}}
          },
          agents: {
            list: [
              { id: 'main', default: true },
              { id: 'slow', builtin: { pieceDelayMs: 200, pieces: 50 } },
            ],
          },
        }
        """;

    /// <summary>What the built-in agent <c>main</c> answers in a session that holds <paramref name="earlier"/> turns, the last saying <paramref name="last"/>.</summary>
    public static string Reply(string message, int earlier, string last) =>
        $"Built-in agent 'main' received: \"{message}\". This session holds {earlier} earlier turn(s); the last one said: \"{last}\".";

    [Fact]
    public async Task Turns_recorded_before_a_kill_9_are_there_after_the_restart()
    {
        await using (var first = await GatewayProcess.StartAsync(port => Config(port), _stateDirectory))
        {
            using var client = first.CreateClient();
            Assert.Equal(ChatApi.FreshReply("one"), await ChatApi.CompleteAsync(client, ChatApi.Body("one", user: "ada")));
            Assert.Equal(Reply("two", 1, "one"), await ChatApi.CompleteAsync(client, ChatApi.Body("two", user: "ada")));

            await first.KillAsync();
        }
        Assert.True(File.Exists(Path.Combine(_stateDirectory, "gateway", "sessions.db")), "no sessions.db under $OPENCLAW_STATE_DIR/gateway");

        await using var second = await GatewayProcess.StartAsync(port => Config(port), _stateDirectory);
        using var again = second.CreateClient();

        Assert.Equal(Reply("three", 2, "two"), await ChatApi.CompleteAsync(again, ChatApi.Body("three", user: "ada")));
        // Another user's session was never written: it starts empty.
        Assert.Equal(ChatApi.FreshReply("hello"), await ChatApi.CompleteAsync(again, ChatApi.Body("hello", user: "grace")));
    }

    [Fact]
    public async Task A_kill_9_in_the_middle_of_streamed_turns_keeps_every_earlier_turn_and_none_of_the_cut_ones()
    {
        // Sessions named by key, so that a session's earlier turns (on the fast agent) and its cut turn (on the slow one) share it.
        var alice = $"crash:alice:{Guid.NewGuid():N}";
        var bob = $"crash:bob:{Guid.NewGuid():N}";
        var dave = $"crash:dave:{Guid.NewGuid():N}";
        await using (var first = await GatewayProcess.StartAsync(port => Config(port), _stateDirectory))
        {
            using var client = first.CreateClient();
            await ChatApi.CompleteAsync(client, ChatApi.Body("alice 1"), sessionKey: alice);
            using (var streamed = await ChatApi.StartStreamAsync(client, ChatApi.Body("alice 2"), sessionKey: alice))
                Assert.Equal(Reply("alice 2", 1, "alice 1"), await ChatApi.StreamedReplyAsync(streamed));
            await ChatApi.CompleteAsync(client, ChatApi.Body("bob 1"), sessionKey: bob);
            // A session by user, which has no turn running at the kill.
            await ChatApi.CompleteAsync(client, ChatApi.Body("carol 1", user: "carol"));
            await ChatApi.CompleteAsync(client, ChatApi.Body("carol 2", user: "carol"));
            await ChatApi.CompleteAsync(client, ChatApi.Body("carol 3", user: "carol"));

            // Three slow streamed turns, each well under way (a few pieces read) when the process dies.
            var cut = new List<(HttpResponseMessage Response, IAsyncEnumerator<SseItem<string>> Events)>();
            foreach (var key in new[] { alice, bob, dave })
            {
                var response = await ChatApi.StartStreamAsync(client, ChatApi.Body($"{key} cut", model: "openclaw:slow"), sessionKey: key);
                var events = ChatApi.EventsAsync(response).GetAsyncEnumerator();
                cut.Add((response, events));
            }
            foreach (var (_, events) in cut)
            {
                for (var pieces = 0; pieces < 3;)
                {
                    Assert.True(await events.MoveNextAsync(), "a slow stream ended before the kill");
                    if (ChatApi.ContentOf(events.Current.Data) is { Length: > 0 }) pieces++;
                }
            }

            await first.KillAsync();

            foreach (var (response, events) in cut)
            {
                Assert.False(await ReachedTheEndAsync(events), "a stream cut by the kill still got a finish chunk or [DONE]");
                await events.DisposeAsync();
                response.Dispose();
            }
        }

        await using var second = await GatewayProcess.StartAsync(port => Config(port), _stateDirectory);
        using var again = second.CreateClient();

        Assert.Equal(Reply("alice 3", 2, "alice 2"), await ChatApi.CompleteAsync(again, ChatApi.Body("alice 3"), sessionKey: alice));
        Assert.Equal(Reply("bob 2", 1, "bob 1"), await ChatApi.CompleteAsync(again, ChatApi.Body("bob 2"), sessionKey: bob));
        Assert.Equal(ChatApi.FreshReply("dave 1"), await ChatApi.CompleteAsync(again, ChatApi.Body("dave 1"), sessionKey: dave));
        Assert.Equal(Reply("carol 4", 3, "carol 3"), await ChatApi.CompleteAsync(again, ChatApi.Body("carol 4", user: "carol")));
    }

    /// <summary>Reads what is left of a stream; true if it still ended properly (a finish chunk or [DONE]), false if it broke off.</summary>
    public static async Task<bool> ReachedTheEndAsync(IAsyncEnumerator<SseItem<string>> events)
    {
        try
        {
            while (await events.MoveNextAsync())
            {
                if (events.Current.Data == "[DONE]") return true;
                using var chunk = JsonDocument.Parse(events.Current.Data);
                if (chunk.RootElement.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                    && choices[0].TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String) return true;
            }
            return false;
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_stateDirectory, recursive: true); } catch (IOException) { }
    }
}
