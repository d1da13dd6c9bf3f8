using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §5: <c>agents.defaults.maxConcurrent</c> caps runs across sessions; excess requests wait for a slot.</summary>
public sealed class MaxConcurrentTests : IAsyncLifetime
{
    private const string Config = """
        {
          gateway: { port: 0, auth: { token: 'test-token' }, http: { endpoints: { chatCompletions: { enabled: true } } } },
          agents: { defaults: { maxConcurrent: 1, builtin: { pieceDelayMs: 100 } }, list: [ { id: 'main' } ] },
        }
        """;

    private GatewayServer _server = null!;

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(Config);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_request_beyond_the_cap_waits_for_a_slot_and_then_runs()
    {
        using var client = _server.CreateClient();
        using var first = await ChatApi.StartStreamAsync(client, ChatApi.Body("first", stream: true));

        // Another session's request gets no answer while the only slot is taken...
        var second = ChatApi.CompleteAsync(client, ChatApi.Body("second"));
        await Eventually.TrueAsync(() => _server.Metrics.WaitingForRunSlot == 1 || second.IsCompleted, TimeSpan.FromSeconds(5),
            "the second request never waited for a run slot");
        Assert.False(second.IsCompleted, "the second run started while the first held the only slot");
        Assert.Equal(1, _server.Metrics.WaitingForRunSlot);
        Assert.Equal(1, _server.Metrics.ActiveRuns);

        // ...and runs once the first is done.
        Assert.Equal(ChatApi.FreshReply("first"), await ChatApi.StreamedReplyAsync(first));
        Assert.Equal(ChatApi.FreshReply("second"), await Eventually.WithinAsync(second, TimeSpan.FromSeconds(10), "the second request"));
    }

    [Fact]
    public async Task A_waiting_request_whose_client_leaves_never_runs_and_frees_its_place()
    {
        using var client = _server.CreateClient();
        using var first = await ChatApi.StartStreamAsync(client, ChatApi.Body("first", stream: true));
        using (var giveUp = new CancellationTokenSource())
        {
            var left = ChatApi.CompleteAsync(client, ChatApi.Body("left"), cancellationToken: giveUp.Token);
            // It leaves once it is waiting for the slot, not before it got there.
            await Eventually.TrueAsync(() => _server.Metrics.WaitingForRunSlot == 1 || left.IsCompleted, TimeSpan.FromSeconds(5),
                "the request never waited for a run slot");
            giveUp.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => left);
        }
        await Eventually.TrueAsync(() => _server.Metrics.WaitingForRunSlot == 0, TimeSpan.FromSeconds(5), "the request that left still waits for a slot");
        var third = ChatApi.CompleteAsync(client, ChatApi.Body("third"));

        await ChatApi.StreamedReplyAsync(first);

        Assert.Equal(ChatApi.FreshReply("third"), await Eventually.WithinAsync(third, TimeSpan.FromSeconds(10), "the third request"));
        Assert.Equal(2, _server.Metrics.RunsStarted);
    }
}
