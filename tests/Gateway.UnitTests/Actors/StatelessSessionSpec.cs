using Akka.Actor;
using Akka.Streams;
using Gateway.Agents;
using Gateway.Actors.Sessions;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Actors;

/// <summary>
/// Stateless turns (no session key, no <c>user</c>) run in a few shared sessions
/// (<see cref="StatelessSessionActor"/>): side by side, remembering nothing, each leaving or crashing
/// alone, and without a session started and stopped per request.
/// </summary>
public sealed class StatelessSessionSpec(ITestOutputHelper output) : SessionSpecBase(output)
{
    /// <summary>The router as production builds it: stateless turns go to <paramref name="statelessSessions"/> shared sessions.</summary>
    private IActorRef SharedStatelessRouter(IAgentRuntimeResolver resolver, int statelessSessions = 1, SessionSettings? settings = null) =>
        Router(resolver, (settings ?? Settings()) with { StatelessSessions = statelessSessions });

    private static async Task FinishAsync(RunStarted run, string reply)
    {
        await run.Agent.SendNextAsync(new TextDelta(reply));
        await run.Agent.SendNextAsync(new RunEnded());
    }

    private static RunStarted RunOf(IEnumerable<RunStarted> runs, StartTurn turn) =>
        Assert.Single(runs, run => run.Turn.Input.Message == turn.Input.Message);

    private static CancelTurn Cancel(StartTurn turn) => new(turn.SessionKey, turn.TurnId, Stateless: true);

    private async Task<RunSlots> RunSlotsAsync(IActorRef runSlots)
    {
        var probe = CreateTestProbe();
        runSlots.Tell(GetRunSlots.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<RunSlots>();
    }

    // ---- side by side, no memory ------------------------------------------------------------------

    [Fact]
    public async Task Stateless_turns_in_one_shared_session_run_side_by_side_and_each_client_reads_its_own_answer()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs));
        var (client1, client2) = (CreateTestProbe(), CreateTestProbe());
        var turn1 = StatelessTurn("first", AnswerMode.Stream);
        var turn2 = StatelessTurn("second", AnswerMode.Stream);

        router.Tell(turn1, client1.Ref);
        router.Tell(turn2, client2.Ref);

        // Both runs start while neither has finished: the second does not wait behind the first.
        RunStarted[] started = [await runs.ExpectMsgAsync<RunStarted>(), await runs.ExpectMsgAsync<RunStarted>()];
        var (run1, run2) = (RunOf(started, turn1), RunOf(started, turn2));
        Assert.Equal(2, Metrics.ActiveRuns);
        Assert.Equal(turn1.SessionKey, run1.Turn.SessionKey); // the run sees its own key, not the shared session's
        Assert.Equal(turn2.SessionKey, run2.Turn.SessionKey);
        Assert.Empty(run1.Turn.History);
        Assert.Empty(run2.Turn.History);
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router)); // ... and both in the one shared session

        var answer1 = (await client1.ExpectMsgAsync<TurnStreaming>()).Answer;
        var answer2 = (await client2.ExpectMsgAsync<TurnStreaming>()).Answer;
        Assert.Equal(Event(turn1, RolePart.Instance), await ReadOneAsync(answer1));
        await run1.Agent.SendNextAsync(new TextDelta("one, "));
        Assert.Equal(Event(turn1, new ContentPart("one, ")), await ReadOneAsync(answer1));

        // The later turn finishes first, while the earlier one is still open.
        await FinishAsync(run2, "two");
        Assert.Equal(
            [Event(turn2, RolePart.Instance), Event(turn2, new ContentPart("two")), Event(turn2, new FinishPart(FinishReasons.Stop)), "[DONE]"],
            await ReadAllAsync(answer2));

        await FinishAsync(run1, "still one");
        Assert.Equal(
            [Event(turn1, new ContentPart("still one")), Event(turn1, new FinishPart(FinishReasons.Stop)), "[DONE]"],
            await ReadAllAsync(answer1));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        Assert.Equal(0, Metrics.RunsFailed);
    }

    [Fact]
    public async Task Stateless_turns_in_a_shared_session_remember_nothing_even_with_the_same_key()
    {
        var router = SharedStatelessRouter(BuiltIn);
        var key = $"agent:main:openai:{Guid.NewGuid()}";

        var first = await AskForReplyAsync(router, Turn(key, "remember the cat", stateless: true));
        var second = await AskForReplyAsync(router, Turn(key, "what did I say?", stateless: true));
        var another = await AskForReplyAsync(router, StatelessTurn("and now?"));

        Assert.Contains("This session holds no earlier turns.", first);
        Assert.Contains("received: \"what did I say?\"", second);
        Assert.Contains("This session holds no earlier turns.", second);
        Assert.Contains("received: \"and now?\"", another);
        Assert.Contains("This session holds no earlier turns.", another);
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router)); // all three went to the one shared session
    }

    // ---- leaving and crashing -----------------------------------------------------------------------

    [Fact]
    public async Task Cancelling_a_running_stateless_turn_stops_only_its_run_and_the_other_turn_in_the_shared_session_completes()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs));
        var (leaving, staying) = (CreateTestProbe(), CreateTestProbe());
        var left = StatelessTurn("tell me a long story", AnswerMode.Stream);
        var kept = StatelessTurn("and me a short one");

        router.Tell(left, leaving.Ref);
        router.Tell(kept, staying.Ref);
        RunStarted[] started = [await runs.ExpectMsgAsync<RunStarted>(), await runs.ExpectMsgAsync<RunStarted>()];
        var (leftRun, keptRun) = (RunOf(started, left), RunOf(started, kept));
        var answer = (await leaving.ExpectMsgAsync<TurnStreaming>()).Answer;
        Assert.Equal(Event(left, RolePart.Instance), await ReadOneAsync(answer));
        await leftRun.Agent.SendNextAsync(new TextDelta("Once upon"));
        Assert.Equal(Event(left, new ContentPart("Once upon")), await ReadOneAsync(answer));

        router.Tell(Cancel(left));

        await leftRun.Agent.ExpectCancellationAsync();      // its agent is stopped
        Assert.Empty(await ReadAllAsync(answer));    // and its reader side completes
        await AwaitAssertAsync(() => Assert.Equal(1, Metrics.ActiveRuns));

        // The other run was left alone and still answers its client.
        await FinishAsync(keptRun, "the end");
        Assert.Equal("the end", ReplyText(await staying.ExpectMsgAsync<TurnCompleted>()));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        Assert.Equal(0, Metrics.RunsFailed); // a client leaving is not a failed run
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
    }

    [Fact]
    public async Task Crashing_stateless_run_fails_only_its_own_client_and_the_shared_session_keeps_serving()
    {
        var runs = CreateTestProbe();
        var probed = Probed(runs);
        var agent = new TestRuntime(turn => turn.Input.Message switch
        {
            "crash" => throw new InvalidOperationException("the model client blew up"),
            "alongside" => probed.Run(turn),
            _ => BuiltIn.Run(turn),
        });
        var router = SharedStatelessRouter(agent);
        var (alongside, crashing) = (CreateTestProbe(), CreateTestProbe());

        router.Tell(StatelessTurn("alongside"), alongside.Ref);
        var alongsideRun = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(StatelessTurn("crash"), crashing.Ref);

        Assert.Equal(ChatError.Internal, (await crashing.ExpectMsgAsync<TurnFailed>()).Error);

        // A turn afterwards is answered by the same shared session...
        var next = await AskForReplyAsync(router, StatelessTurn("hello again"));
        Assert.Contains("received: \"hello again\"", next);
        Assert.Contains("This session holds no earlier turns.", next);
        // ... and the run that was going on beside the crash was not touched by it.
        await alongside.ExpectNoMsgAsync(TimeSpan.Zero);
        await FinishAsync(alongsideRun, "unharmed");
        Assert.Equal("unharmed", ReplyText(await alongside.ExpectMsgAsync<TurnCompleted>()));

        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        Assert.Equal((3, 1), (Metrics.RunsStarted, Metrics.RunsFailed));
    }

    // ---- no session per request ---------------------------------------------------------------------

    [Fact]
    public async Task Stateless_turns_start_no_session_of_their_own_only_the_shared_ones()
    {
        var router = SharedStatelessRouter(BuiltIn, statelessSessions: 2);
        // Enough turns that both shared sessions get some (keys are spread by a per-process hash).
        var extractor = new SessionKeyExtractor(statelessSessions: 2);
        var turns = new List<StartTurn>();
        while (turns.Count < 8 || (turns.Select(extractor.EntityId).Distinct().Count() < 2 && turns.Count < 64))
            turns.Add(StatelessTurn($"request {turns.Count}"));
        Assert.Equal(2, turns.Select(extractor.EntityId).Distinct().Count());
        var clients = turns.Select(_ => CreateTestProbe()).ToArray();

        for (var i = 0; i < turns.Count; i++) router.Tell(turns[i], clients[i].Ref);

        for (var i = 0; i < turns.Count; i++)
            Assert.Contains($"received: \"request {i}\"", ReplyText(await clients[i].ExpectMsgAsync<TurnCompleted>()));
        Assert.Equal(new SessionCount(2, 0), await SessionCountAsync(router));
        Assert.Equal(0, Metrics.LiveSessions);

        // A turn with memory still gets a session of its own, and counts as one.
        await AskForReplyAsync(router, Turn(AliceKey, "remember the cat"));
        Assert.Contains("the last one said: \"remember the cat\"", await AskForReplyAsync(router, Turn(AliceKey, "what did I say?")));
        Assert.Equal(new SessionCount(3, 0), await SessionCountAsync(router));
        Assert.Equal(1, Metrics.LiveSessions);
    }

    [Fact]
    public async Task Idle_shared_stateless_session_is_not_passivated()
    {
        var router = SharedStatelessRouter(BuiltIn, settings: Settings(passivateAfter: TimeSpan.FromMilliseconds(100)));

        await AskForReplyAsync(router, StatelessTurn("hi"));
        await CreateTestProbe().ExpectNoMsgAsync(TimeSpan.FromMilliseconds(400)); // several passivation periods

        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        Assert.Contains("received: \"hi again\"", await AskForReplyAsync(router, StatelessTurn("hi again")));
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        Assert.Equal(0, Metrics.LiveSessions);
    }

    // ---- capped runs --------------------------------------------------------------------------------

    [Fact]
    public async Task With_runs_capped_a_stateless_turn_waits_for_a_run_slot_and_runs_when_the_first_finishes()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs), settings: Settings() with { MaxConcurrentRuns = 1 });
        var runSlots = await RunSlotsOfAsync(router);
        var (client1, client2) = (CreateTestProbe(), CreateTestProbe());

        router.Tell(StatelessTurn("first"), client1.Ref);
        var first = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(StatelessTurn("second"), client2.Ref);
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(1, 1), await RunSlotsAsync(runSlots)));
        await runs.ExpectNoMsgAsync(Quiet); // the second waits for the slot; it is not rejected
        await client2.ExpectNoMsgAsync(TimeSpan.Zero);

        await FinishAsync(first, "one");
        Assert.Equal("one", ReplyText(await client1.ExpectMsgAsync<TurnCompleted>()));
        var second = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("second", second.Turn.Input.Message);
        Assert.Equal(new RunSlots(1, 0), await RunSlotsAsync(runSlots));

        await FinishAsync(second, "two");
        Assert.Equal("two", ReplyText(await client2.ExpectMsgAsync<TurnCompleted>()));
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(0, 0), await RunSlotsAsync(runSlots)));
    }

    [Fact]
    public async Task With_runs_capped_stateless_turns_beyond_the_waiting_bound_are_refused_as_busy_and_the_waiting_one_still_runs()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs), settings: Settings() with { MaxConcurrentRuns = 1, MaxWaitingRuns = 1 });
        var runSlots = await RunSlotsOfAsync(router);
        var (client1, client2, client3) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());

        router.Tell(StatelessTurn("first"), client1.Ref);
        var first = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(StatelessTurn("second"), client2.Ref);
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(1, 1), await RunSlotsAsync(runSlots)));
        Assert.Equal(1, Metrics.WaitingForRunSlot);
        router.Tell(StatelessTurn("one too many"), client3.Ref);

        var refused = await client3.ExpectMsgAsync<TurnFailed>();
        Assert.Equal(("rate_limit_error", 429, 1), (refused.Error.Type, refused.Error.HttpStatus, refused.Error.RetryAfterSeconds));
        await FinishAsync(first, "one");
        Assert.Equal("one", ReplyText(await client1.ExpectMsgAsync<TurnCompleted>()));
        var second = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("second", second.Turn.Input.Message);
        await FinishAsync(second, "two");
        Assert.Equal("two", ReplyText(await client2.ExpectMsgAsync<TurnCompleted>()));
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(0, 0), await RunSlotsAsync(runSlots)));
        Assert.Equal(0, Metrics.WaitingForRunSlot);
    }

    [Fact]
    public async Task Cancelling_a_stateless_turn_that_waits_for_a_run_slot_withdraws_it_and_leaks_no_slot()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs), settings: Settings() with { MaxConcurrentRuns = 1 });
        var runSlots = await RunSlotsOfAsync(router);
        var (client1, client2, client3) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        var waiting = StatelessTurn("second");

        router.Tell(StatelessTurn("first"), client1.Ref);
        var first = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(waiting, client2.Ref);
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(1, 1), await RunSlotsAsync(runSlots)));

        router.Tell(Cancel(waiting));

        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(1, 0), await RunSlotsAsync(runSlots)));
        router.Tell(StatelessTurn("third"), client3.Ref);
        await FinishAsync(first, "one");
        Assert.Equal("one", ReplyText(await client1.ExpectMsgAsync<TurnCompleted>()));

        var third = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal("third", third.Turn.Input.Message);
        await FinishAsync(third, "three");
        Assert.Equal("three", ReplyText(await client3.ExpectMsgAsync<TurnCompleted>()));
        await runs.ExpectNoMsgAsync(Quiet); // the withdrawn turn never starts
        await client2.ExpectNoMsgAsync(TimeSpan.Zero);
        await AwaitAssertAsync(async () => Assert.Equal(new RunSlots(0, 0), await RunSlotsAsync(runSlots)));
    }

    // ---- where messages go ----------------------------------------------------------------------------

    [Fact]
    public void A_stateless_turn_and_its_CancelTurn_go_to_the_same_shared_session_the_same_one_for_the_same_key()
    {
        var extractor = new SessionKeyExtractor(statelessSessions: 4);
        var turn = StatelessTurn("hi");
        var again = Turn(turn.SessionKey, "hi again", stateless: true);

        var id = extractor.EntityId(turn);

        Assert.NotNull(id);
        Assert.True(SessionKeyExtractor.IsStatelessEntity(id));
        Assert.NotEqual(turn.SessionKey, id);
        Assert.Equal(id, extractor.EntityId(again));
        Assert.Equal(id, extractor.EntityId(Cancel(turn)));
        Assert.Equal(id, new SessionKeyExtractor(statelessSessions: 4).EntityId(turn)); // another extractor agrees
        Assert.Same(turn, extractor.EntityMessage(turn));
    }

    [Fact]
    public void A_turn_with_memory_goes_to_its_own_session_key()
    {
        var extractor = new SessionKeyExtractor(statelessSessions: 4);
        var turn = Turn(AliceKey, "hi");

        Assert.Equal(AliceKey, extractor.EntityId(turn));
        Assert.Equal(AliceKey, extractor.EntityId(new CancelTurn(AliceKey, turn.TurnId)));
        Assert.False(SessionKeyExtractor.IsStatelessEntity(AliceKey));
        Assert.Null(extractor.EntityId(GetSessionCount.Instance));
    }

    [Fact]
    public void Without_shared_sessions_a_stateless_turn_goes_to_a_session_of_its_own()
    {
        var turn = StatelessTurn("hi");

        Assert.Equal(turn.SessionKey, SessionKeyExtractor.Instance.EntityId(turn));
        Assert.Equal(turn.SessionKey, SessionKeyExtractor.Instance.EntityId(Cancel(turn)));
        Assert.Equal(turn.SessionKey, new SessionKeyExtractor(statelessSessions: 0).EntityId(turn));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SessionKeyExtractor(statelessSessions: -1));
    }

    [Fact]
    public void Many_stateless_keys_spread_over_all_the_shared_sessions()
    {
        var extractor = new SessionKeyExtractor(statelessSessions: 4);

        var ids = Enumerable.Range(0, 200).Select(i => extractor.EntityId(StatelessTurn($"request {i}"))!).ToList();

        Assert.All(ids, id => Assert.True(SessionKeyExtractor.IsStatelessEntity(id)));
        // 200 random keys all missing one of 4 sessions: about 4 × (3/4)^200, never in practice.
        Assert.Equal(4, ids.Distinct().Count());
    }

    [Fact]
    public async Task A_stateless_turn_whose_run_cannot_be_set_up_fails_alone_and_the_run_beside_it_goes_on()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(new PickyResolver(Probed(runs)));
        var (alongside, broken) = (CreateTestProbe(), CreateTestProbe());

        router.Tell(StatelessTurn("alongside"), alongside.Ref);
        var run = await runs.ExpectMsgAsync<RunStarted>();
        router.Tell(StatelessTurn("hi") with { Agent = PickyResolver.BrokenAgent }, broken.Ref);

        Assert.Equal(ChatError.Internal, (await broken.ExpectMsgAsync<TurnFailed>()).Error);
        await run.Agent.SendNextAsync(new TextDelta("unharmed"));
        await run.Agent.SendNextAsync(new RunEnded());
        Assert.Equal("unharmed", ReplyText(await alongside.ExpectMsgAsync<TurnCompleted>()));
    }

    [Fact]
    public async Task Turns_one_after_another_reuse_one_run_actor_and_a_late_leave_for_an_ended_turn_touches_nothing()
    {
        var runs = CreateTestProbe();
        var router = SharedStatelessRouter(Probed(runs));

        var first = StatelessTurn("first");
        var firstClient = CreateTestProbe();
        router.Tell(first, firstClient.Ref);
        await FinishAsync(await runs.ExpectMsgAsync<RunStarted>(), "one");
        Assert.Equal("one", ReplyText(await firstClient.ExpectMsgAsync<TurnCompleted>()));
        // The client has its answer before the run actor has reported to its session (the lane tells both):
        // wait for the report, or the second turn may find no idle run actor yet.
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));

        var secondClient = CreateTestProbe();
        router.Tell(StatelessTurn("second"), secondClient.Ref);
        var second = await runs.ExpectMsgAsync<RunStarted>();
        // The first client's leave comes late (its turn has ended): the second turn, on the same run actor, goes on.
        router.Tell(Cancel(first));
        await FinishAsync(second, "two");
        Assert.Equal("two", ReplyText(await secondClient.ExpectMsgAsync<TurnCompleted>()));

        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
        // One run actor served both turns: exactly one answers for the session's runs.
        var identities = CreateTestProbe();
        Sys.ActorSelection(router.Path / "*" / "run-*").Tell(new Identify(null), identities.Ref);
        Assert.Equal("run-1", (await identities.ExpectMsgAsync<ActorIdentity>()).Subject?.Path.Name);
        await identities.ExpectNoMsgAsync(Quiet);
        Assert.Equal((2, 0), (Metrics.RunsStarted, Metrics.RunsFailed));
    }

    [Fact]
    public async Task A_stateless_run_reads_its_agents_workspace_instructions_per_turn()
    {
        var workspace = Directory.CreateTempSubdirectory("gateway-stateless-").FullName;
        try
        {
            var agent = MainAgent with { Workspace = workspace };
            var seen = CreateTestProbe();
            var router = SharedStatelessRouter(new TestRuntime(turn =>
            {
                seen.Tell(turn.Instructions ?? "(none)");
                return BuiltIn.Run(turn);
            }));

            await File.WriteAllTextAsync(Path.Combine(workspace, "AGENTS.md"), "Be brief.");
            await AskForReplyAsync(router, StatelessTurn("one") with { Agent = agent });
            Assert.Equal("Be brief.", await seen.ExpectMsgAsync<string>());

            // An edit to the workspace applies to the next stateless request.
            await File.WriteAllTextAsync(Path.Combine(workspace, "AGENTS.md"), "Be thorough.");
            await AskForReplyAsync(router, StatelessTurn("two") with { Agent = agent });
            Assert.Equal("Be thorough.", await seen.ExpectMsgAsync<string>());
        }
        finally
        {
            Directory.Delete(workspace, recursive: true);
        }
    }
}
