using System.Net.Sockets;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>
/// A client that leaves cancels its run (spec §8): nothing keeps running for nobody, and the session
/// is free for the next turn. The <c>slow</c> agent would otherwise run for about 10 s.
/// </summary>
public sealed class ClientDisconnectTests(SlowGatewayFixture fixture) : IClassFixture<SlowGatewayFixture>, IAsyncLifetime
{
    private static readonly TimeSpan RunsEndWithin = TimeSpan.FromSeconds(2);
    private GatewayServer Server => fixture.Server;

    private static string SlowModel => $"openclaw/{SlowGatewayFixture.SlowAgent}";

    /// <summary>
    /// A client that really hangs up when it drops a response. By default SocketsHttpHandler drains an
    /// unfinished response for up to 2 s (ResponseDrainTimeout) to reuse the connection, so to the
    /// server that client is still reading; with no drain allowed, disposing closes the connection.
    /// </summary>
    private HttpClient DroppingClient() =>
        new(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
        {
            BaseAddress = Server.BaseAddress,
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestHeaders = { Authorization = new("Bearer", GatewayServer.Token) },
        };

    public Task InitializeAsync() => Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "no run is left from an earlier test");

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Client_that_drops_mid_stream_leaves_no_run_behind_and_the_session_is_free_again()
    {
        using var client = DroppingClient();
        var user = $"dropper-{Guid.NewGuid():N}";

        using (var response = await ChatApi.StartStreamAsync(client, ChatApi.Body("a long answer, please", model: SlowModel, user: user)))
        {
            await ReadFirstContentAsync(response);
            Assert.Equal(1, Server.Metrics.ActiveRuns);
        }

        await Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "the dropped stream's run ends");

        // The same session takes the next turn at once: had the old run kept it, the role chunk would wait ~8 s.
        using var next = await Eventually.WithinAsync(
            ChatApi.StartStreamAsync(client, ChatApi.Body("are you free?", model: SlowModel, user: user)),
            TimeSpan.FromSeconds(3), "the session answers the next turn");
        await using var events = ChatApi.EventsAsync(next).GetAsyncEnumerator();
        Assert.True(await Eventually.WithinAsync(events.MoveNextAsync().AsTask(), TimeSpan.FromSeconds(3), "the next turn's role chunk"));
        Assert.Contains("\"role\":\"assistant\"", events.Current.Data);
    }

    [Fact]
    public async Task Client_that_gives_up_on_a_non_streamed_answer_leaves_no_run_behind()
    {
        using var client = DroppingClient();
        using var giveUp = new CancellationTokenSource();
        var runsBefore = Server.Metrics.RunsStarted;

        var waiting = ChatApi.CompleteAsync(client, ChatApi.Body("never mind", model: SlowModel, user: $"quitter-{Guid.NewGuid():N}"), cancellationToken: giveUp.Token);
        await Eventually.TrueAsync(() => Server.Metrics.RunsStarted > runsBefore, TimeSpan.FromSeconds(5), "the run starts");
        giveUp.CancelAfter(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "the abandoned run ends");
    }

    [Fact]
    public async Task Stateless_stream_dropped_mid_way_leaves_no_run_behind()
    {
        using var client = DroppingClient();
        using var cancel = new CancellationTokenSource();

        using (var response = await ChatApi.StartStreamAsync(client, ChatApi.Body("no user here", model: SlowModel), cancellationToken: cancel.Token))
        {
            await ReadFirstContentAsync(response, cancel.Token);
            cancel.Cancel();
        }

        await Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "the dropped stream's run ends");
    }

    [Fact]
    public async Task Stream_dropped_while_its_agent_is_silent_leaves_no_run_behind()
    {
        using var client = DroppingClient();
        using var response = await ChatApi.StartStreamAsync(client, ChatApi.Body("think hard", model: $"openclaw/{SlowGatewayFixture.SilentAgent}"));
        await using (var events = ChatApi.EventsAsync(response).GetAsyncEnumerator())
        {
            Assert.True(await Eventually.WithinAsync(events.MoveNextAsync().AsTask(), TimeSpan.FromSeconds(5), "the role chunk"));
            Assert.Equal(1, Server.Metrics.ActiveRuns);
        }

        // Nothing is being written when the client leaves: the gateway must notice without a write failing.
        response.Dispose();
        await Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "the silent agent's run ends");
    }

    [Fact]
    public async Task Client_that_stops_reading_holds_up_its_agent_and_one_that_then_hangs_up_ends_its_run()
    {
        // A small receive buffer, so the kernel holds little of the answer on the client's side.
        using var client = new HttpClient(new SocketsHttpHandler
        {
            MaxResponseDrainSize = 0,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 4096 };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = Server.BaseAddress,
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestHeaders = { Authorization = new("Bearer", GatewayServer.Token) },
        };
        var before = Server.Metrics.AgentOutputChars;

        using (var response = await ChatApi.StartStreamAsync(client, ChatApi.Body("flood me", model: $"openclaw/{SlowGatewayFixture.FloodAgent}")))
        {
            await ReadFirstContentAsync(response);

            // The client reads no more: once the socket's buffers and the response's are full, the agent waits.
            var produced = await Eventually.StableAsync(() => Server.Metrics.AgentOutputChars - before, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(15));
            Assert.InRange(produced, 1, SlowGatewayFixture.FloodChars / 10);
            Assert.Equal(1, Server.Metrics.ActiveRuns);
        }

        // It hangs up while the gateway waits for it to read: the wait ends, and the run with it.
        await Eventually.TrueAsync(() => Server.Metrics.ActiveRuns == 0, RunsEndWithin, "the held-up stream's run ends");
    }

    /// <summary>Reads events up to and including the first content delta.</summary>
    private static async Task ReadFirstContentAsync(HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(5));
        await foreach (var item in ChatApi.EventsAsync(response, deadline.Token))
        {
            if (ChatApi.ContentOf(item.Data) is { Length: > 0 }) return;
        }
        Assert.Fail("the stream ended before any content");
    }
}
