using Akka.Actor;
using Akka.Streams.Dsl;
using Gateway.Actors.Sessions;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Actors;

/// <summary>Spec §5: one session runs its turns one at a time, in arrival order, and survives a crashed run.</summary>
public sealed class SessionActorSpec(ITestOutputHelper output) : SessionSpecBase(output)
{
    private static async Task FinishAsync(RunStarted run, string reply)
    {
        await run.Agent.SendNextAsync(new TextDelta(reply));
        await run.Agent.SendNextAsync(new RunEnded());
    }

    [Fact]
    public async Task Turns_in_one_session_run_in_arrival_order()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));
        var (alice1, alice2, alice3) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());

        router.Tell(Turn(AliceKey, "first"), alice1.Ref);
        router.Tell(Turn(AliceKey, "second"), alice2.Ref);
        router.Tell(Turn(AliceKey, "third"), alice3.Ref);

        var first = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("first", first.Turn.Input.Message);
        await runs.ExpectNoMsgAsync(Quiet); // the second waits; it is not rejected
        await FinishAsync(first, "one");
        Assert.Equal("one", ReplyText(await alice1.ExpectMsgAsync<TurnCompleted>()));

        var second = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("second", second.Turn.Input.Message);
        Assert.Equal(["first", "one"], second.Turn.History.Select(entry => entry.Text));
        await runs.ExpectNoMsgAsync(Quiet);
        await FinishAsync(second, "two");
        Assert.Equal("two", ReplyText(await alice2.ExpectMsgAsync<TurnCompleted>()));

        var third = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("third", third.Turn.Input.Message);
        await FinishAsync(third, "three");
        Assert.Equal("three", ReplyText(await alice3.ExpectMsgAsync<TurnCompleted>()));
    }

    [Fact]
    public async Task Turns_in_different_sessions_run_side_by_side()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));

        router.Tell(Turn(AliceKey, "alice's"), CreateTestProbe().Ref);
        router.Tell(Turn(BobKey, "bob's"), CreateTestProbe().Ref);

        var started = new[] { await runs.ExpectMsgAsync<RunStarted>(), await runs.ExpectMsgAsync<RunStarted>() };
        Assert.Equal(["alice's", "bob's"], started.Select(run => run.Turn.Input.Message).Order());
        Assert.Equal(2, Metrics.ActiveRuns);
    }

    [Fact]
    public async Task A_turn_whose_run_cannot_be_set_up_fails_alone_and_the_session_keeps_its_memory()
    {
        var router = Router(new PickyResolver(BuiltIn));

        await AskForReplyAsync(router, Turn(AliceKey, "first"));
        var client = CreateTestProbe();
        router.Tell(Turn(AliceKey, "to the broken agent") with { Agent = PickyResolver.BrokenAgent }, client.Ref);

        Assert.Equal(ChatError.Internal, (await client.ExpectMsgAsync<TurnFailed>()).Error);
        var next = await AskForReplyAsync(router, Turn(AliceKey, "hello again"));
        Assert.Contains("This session holds 1 earlier turn(s); the last one said: \"first\".", next);
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
    }

    [Fact]
    public async Task Crashing_run_fails_its_client_and_the_session_answers_the_next_turn()
    {
        var crashing = new TestRuntime(turn => turn.Input.Message == "crash"
            ? throw new InvalidOperationException("the model client blew up")
            : BuiltIn.Run(turn));
        var router = Router(crashing);
        var client = CreateTestProbe();

        router.Tell(Turn(AliceKey, "crash"), client.Ref);

        Assert.Equal(ChatError.Internal, (await client.ExpectMsgAsync<TurnFailed>()).Error);

        var next = await AskForReplyAsync(router, Turn(AliceKey, "hello again"));
        Assert.Contains("received: \"hello again\"", next);
        Assert.Contains("This session holds no earlier turns.", next); // the crashed turn is not remembered
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        Assert.Equal((2, 1), (Metrics.RunsStarted, Metrics.RunsFailed));
    }

    [Fact]
    public async Task Cancelling_a_queued_turn_removes_it_and_the_next_turn_still_runs()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));
        var (client1, client2, client3) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        var left = Turn(AliceKey, "second");

        router.Tell(Turn(AliceKey, "first"), client1.Ref);
        router.Tell(left, client2.Ref);
        router.Tell(Turn(AliceKey, "third"), client3.Ref);
        // Sent through the same router, so the session handles the leave before the first run can end
        // (leaving after RunStarted would race the first run's finish).
        router.Tell(new CancelTurn(AliceKey, left.TurnId));
        var first = await runs.ExpectMsgAsync<RunStarted>();

        await FinishAsync(first, "one");
        await client1.ExpectMsgAsync<TurnCompleted>();

        var next = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("third", next.Turn.Input.Message);
        await FinishAsync(next, "three");
        Assert.Equal("three", ReplyText(await client3.ExpectMsgAsync<TurnCompleted>()));
        await runs.ExpectNoMsgAsync(Quiet); // the left turn never starts
        await client2.ExpectNoMsgAsync(TimeSpan.Zero);
    }

    [Fact]
    public async Task Cancelling_the_running_streamed_turn_stops_its_run()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));
        var client = CreateTestProbe();
        var turn = Turn(AliceKey, "tell me a long story", AnswerMode.Stream);

        router.Tell(turn, client.Ref);
        var answer = (await client.ExpectMsgAsync<TurnStreaming>()).Answer;
        var run = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal(Event(turn, RolePart.Instance), await ReadOneAsync(answer));
        await run.Agent.SendNextAsync(new TextDelta("Once upon"));
        Assert.Equal(Event(turn, new ContentPart("Once upon")), await ReadOneAsync(answer));
        Assert.Equal(1, Metrics.ActiveRuns);

        router.Tell(new CancelTurn(AliceKey, turn.TurnId));

        await run.Agent.ExpectCancellationAsync();               // the agent (and its model call) is stopped
        Assert.Empty(await ReadAllAsync(answer));         // the reader side completes
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));

        // The session goes on, and the cancelled turn is not part of its memory.
        var next = CreateTestProbe();
        router.Tell(Turn(AliceKey, "again"), next.Ref);
        var again = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Empty(again.Turn.History);
        await FinishAsync(again, "ok");
        Assert.Equal("ok", ReplyText(await next.ExpectMsgAsync<TurnCompleted>()));
    }

    [Fact]
    public async Task Cancelling_the_running_completion_turn_stops_its_run()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));
        var turn = Turn(AliceKey, "tell me a long story");

        router.Tell(turn, CreateTestProbe().Ref);
        var run = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(new CancelTurn(AliceKey, turn.TurnId));

        await run.Agent.ExpectCancellationAsync();
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        Assert.Equal(0, Metrics.RunsFailed); // a client leaving is not a failed run
    }

    [Fact]
    public async Task Turns_beyond_MaxQueuedTurns_are_refused_as_busy_with_a_Retry_After()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs), Settings(maxQueuedTurns: 2));
        var clients = Enumerable.Range(0, 4).Select(_ => CreateTestProbe()).ToArray();

        router.Tell(Turn(AliceKey, "running"), clients[0].Ref);
        var running = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(Turn(AliceKey, "queued 1"), clients[1].Ref);
        router.Tell(Turn(AliceKey, "queued 2"), clients[2].Ref);
        router.Tell(Turn(AliceKey, "one too many"), clients[3].Ref);

        var refused = await clients[3].ExpectMsgAsync<TurnFailed>();
        Assert.Equal(("rate_limit_error", 429, 1), (refused.Error.Type, refused.Error.HttpStatus, refused.Error.RetryAfterSeconds));

        // The queued ones still run, in order.
        await FinishAsync(running, "0");
        await clients[0].ExpectMsgAsync<TurnCompleted>();
        var queued1 = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("queued 1", queued1.Turn.Input.Message);
        await FinishAsync(queued1, "1");
        await clients[1].ExpectMsgAsync<TurnCompleted>();
        var queued2 = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("queued 2", queued2.Turn.Input.Message);
    }

    [Fact]
    public async Task Only_a_succeeded_turn_is_remembered()
    {
        var failing = new TestRuntime(turn => turn.Input.Message == "fail"
            ? new AgentEvent[] { new TextDelta("half"), new RunFailed(new ChatError("upstream refused", "api_error")) }.ToAsyncEnumerable()
            : BuiltIn.Run(turn));
        var router = Router(failing);
        var client = CreateTestProbe();

        router.Tell(Turn(AliceKey, "fail"), client.Ref);
        var failed = await client.ExpectMsgAsync<TurnFailed>();
        Assert.Equal(new ChatError("upstream refused", "api_error"), failed.Error);

        var next = await AskForReplyAsync(router, Turn(AliceKey, "and now?"));
        Assert.Contains("This session holds no earlier turns.", next);
    }
}
