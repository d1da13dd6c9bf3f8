using System.Runtime.CompilerServices;
using Akka.Streams;
using Akka.Streams.Implementation;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// Where runs become answers: <see cref="RunLanes"/> end to end, from an agent's events to the streamed
/// answer's SSE events or the folded completion, and the lanes kept for run after run.
/// </summary>
/// <remarks>
/// Most specs use lanes that keep no idle lane (<c>maxIdleLanes: 0</c>), so every lane stops once its run is over, and are
/// wrapped in <see cref="NothingLeftRunningAfterAsync"/>: they fail if a stage is left running. A spec about lanes kept
/// idle (reused for the next run, shared by several runs) cannot end with nothing running: idle lanes stay alive by design,
/// and the pool has no way to shut them down. Such a spec is not wrapped; it ends with <see cref="AwaitOnlyIdleLanesAsync"/>,
/// which asserts that every live lane is idle and that no other graph runs.
/// </remarks>
public sealed class RunLanesSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_42", 1767225600, "openclaw");
    private const int PromptTokens = 3;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);
    private const string InternalErrorEvent = """{"error":{"message":"internal error","type":"api_error"}}""";

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private static readonly string RoleEvent = Event(RolePart.Instance);
    private static readonly string StopEvent = Event(new FinishPart(FinishReasons.Stop));

    private ActorMaterializer? _materializer;

    private ActorMaterializer Materializer => _materializer ??= Sys.Materializer();

    /// <summary>Lanes on this spec's materializer, one per graph; by default none is kept idle (each stops after its run).</summary>
    private RunLanes NewLanes(int maxIdleLanes = 0, int burstLimit = 16) => new(Materializer, maxIdleLanes, lanesPerGraph: 1, burstLimit);

    private static StreamingRun Stream(RunLanes lanes, IAsyncEnumerable<AgentEvent> agent, bool includeUsage = false) =>
        lanes.StartStreaming(agent, Header, includeUsage, PromptTokens);

    private Task NothingLeftRunningAfterAsync(Func<Task> spec) => this.AssertNoStageLeftRunningAsync(spec, Materializer);

    /// <summary>The run's lane is held up by its reader: a flush of its response waits for the reader to take what was sent.</summary>
    private Task AwaitWaitingForReaderAsync(StreamingRun run) =>
        AwaitConditionAsync(() => Task.FromResult(AnswerReader.Of(run).WaitsForReader), RemainingOrDefault,
            "expected the run's response to wait for its reader");

    private Task<List<string>> ReadAllAsync(StreamingRun run) => run.ReadAllDataAsync(RemainingOrDefault);

    private Task<string> ReadOneAsync(StreamingRun run) => run.ReadOneDataAsync(RemainingOrDefault);

    private Task AwaitLanesAsync(RunLanes lanes, int live, int idle) =>
        AwaitConditionAsync(() => Task.FromResult(lanes.LiveLanes == live && lanes.IdleLanes == idle), RemainingOrDefault,
            $"expected {live} live and {idle} idle lanes");

    /// <summary>
    /// The end of a spec whose lanes are kept idle: the <paramref name="idle"/> idle lanes are all that is alive, and all
    /// that runs under the materializer are their graphs (one per lane, unless lanes were made several to a graph).
    /// </summary>
    private async Task AwaitOnlyIdleLanesAsync(RunLanes lanes, int idle, IMaterializer? materializer = null, int? graphs = null)
    {
        await AwaitLanesAsync(lanes, live: idle, idle: idle);
        await this.AwaitRunningGraphsAsync(materializer ?? Materializer, graphs ?? idle);
    }

    /// <summary>
    /// A short, explicit "nothing happens" window, for what must not happen and has no event of its own to wait for
    /// (a read that does not come): fails as soon as <paramref name="happened"/> turns true.
    /// </summary>
    private static async Task AssertNothingHappensAsync(Func<bool> happened, string what)
    {
        var until = DateTime.UtcNow + Quiet;
        do
        {
            Assert.False(happened(), what);
            await Task.Delay(10);
        }
        while (DateTime.UtcNow < until);
        Assert.False(happened(), what);
    }

    /// <summary>
    /// A reader that takes nothing holds up its own run (the agent waits while a flush waits for the reader) while
    /// a second run, on another lane, answers in full. <paramref name="lanes"/> flush every part; <paramref name="whileHeldUp"/>
    /// runs once the second run has answered, while the first is still held up.
    /// </summary>
    private async Task SlowReaderHoldsUpOnlyItsOwnLaneAsync(RunLanes lanes, Func<Task>? whileHeldUp = null)
    {
        var stuck = new ScriptedAgent();
        stuck.Say(Enumerable.Range(0, 20).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var slow = Stream(lanes, stuck.Events);
        AnswerReader.Slow(slow);
        await AwaitWaitingForReaderAsync(slow);

        var other = Stream(lanes, Saying(new TextDelta("free"), new RunEnded()));
        // No lane was free: the second run got one of its own.
        Assert.Equal(2, lanes.LiveLanes);

        Assert.Equal([RoleEvent, Event(new ContentPart("free")), StopEvent, "[DONE]"], await ReadAllAsync(other));
        if (whileHeldUp is not null) await whileHeldUp();
        // Held up all along: nothing can end a flush but the reader, and the agent has not gone past what its lane holds.
        Assert.True(AnswerReader.Of(slow).WaitsForReader);
        Assert.InRange(stuck.Produced, 0, 1 + 3);
        slow.Cancel();
        await stuck.Stopped.WaitAsync(RemainingOrDefault);
        Assert.True((await slow.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
    }

    // ---- agents ---------------------------------------------------------------------------------

    /// <summary>An agent that says these events, as fast as it is asked.</summary>
    private static IAsyncEnumerable<AgentEvent> Saying(params AgentEvent[] events) => TestAgents.Saying(events);

    // ---- streamed answers -----------------------------------------------------------------------

    [Fact]
    public Task Reader_gets_the_sse_items_in_wire_order_ending_with_DONE() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var run = Stream(lanes,
            Saying(new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(5, 2)), new RunEnded()), includeUsage: true);

        Assert.Equal(
            [
                RoleEvent,
                Event(new ContentPart("Hel")),
                Event(new ContentPart("lo")),
                StopEvent,
                Event(new UsagePart(new TokenUsage(5, 2))),
                "[DONE]",
            ],
            await ReadAllAsync(run));
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Succeeded);
        Assert.Equal("Hello", outcome.ReplyText);
        Assert.Equal(new TokenUsage(5, 2), outcome.Usage);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Without_include_usage_no_usage_event_is_sent() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var run = Stream(lanes, Saying(new TextDelta("Hi"), new UsageReport(new TokenUsage(5, 1)), new RunEnded()), includeUsage: false);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        // The session still learns the usage.
        Assert.Equal(new TokenUsage(5, 1), (await run.Outcome.WaitAsync(RemainingOrDefault)).Usage);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Agent_that_ends_without_RunEnded_finishes_with_stop_and_its_enumerator_is_finished() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("Hi"));
        agent.End();

        var run = Stream(lanes, agent.Events);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.False(agent.TokenCancelled.IsCompleted);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Agent_is_disposed_once_it_said_RunEnded_even_if_it_would_go_on() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("Hi"), new RunEnded(), new TextDelta("never sent"));

        var run = Stream(lanes, agent.Events);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.Equal(2, agent.Produced);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Reader_gets_the_role_before_the_agent_says_anything() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);

        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        Assert.Equal(0, agent.Produced);

        agent.Say(new TextDelta("Hi"));
        Assert.Equal(Event(new ContentPart("Hi")), await ReadOneAsync(run));
        agent.End();
        Assert.Equal([StopEvent, "[DONE]"], await ReadAllAsync(run));
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Slow_reader_backpressures_the_agent() => NothingLeftRunningAfterAsync(async () =>
    {
        const int burst = 8;
        const int deltas = 1000;
        const int slack = 4; // the few events in flight between the agent and the response, and the one the reader is parsing
        var lanes = NewLanes(burstLimit: burst);
        var produced = 0;

        async IAsyncEnumerable<AgentEvent> Counting()
        {
            for (var i = 0; i < deltas; i++)
            {
                // Some steps finish at once, some later: both ways of reading the agent.
                if (i % 3 == 0) await Task.Yield();
                Interlocked.Increment(ref produced);
                yield return new TextDelta($"{i} ");
            }
        }

        var run = Stream(lanes, Counting());
        // Every flush waits until the reader has taken all that was written.
        AnswerReader.Slow(run);

        var read = new List<string>();
        for (var round = 0; round < 5; round++)
        {
            // The lane writes a burst, then waits for the reader, and the agent with it: it has not run ahead of what was read.
            await AwaitWaitingForReaderAsync(run);
            Assert.InRange(Volatile.Read(ref produced), read.Count - 1, read.Count + burst + slack);

            // Once read, the agent goes on.
            for (var i = 0; i < 50; i++) read.Add(await ReadOneAsync(run));
        }

        read.AddRange(await ReadAllAsync(run));
        Assert.Equal(deltas, Volatile.Read(ref produced));
        Assert.Equal(1 + deltas + 2, read.Count);
        Assert.Equal(RoleEvent, read[0]);
        Assert.Equal(Event(new ContentPart("0 ")), read[1]);
        Assert.Equal(Event(new ContentPart("999 ")), read[deltas]);
        Assert.Equal([StopEvent, "[DONE]"], read[^2..]);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Reader_that_falls_behind_at_the_end_still_gets_DONE() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(burstLimit: 2);
        var run = Stream(lanes, Saying(new TextDelta("a"), new TextDelta("b"), new TextDelta("c")));
        AnswerReader.Slow(run);
        var read = new List<string>();
        for (var i = 0; i < 3; i++) read.Add(await ReadOneAsync(run));

        // The run's end waits for the reader.
        await AwaitWaitingForReaderAsync(run);
        read.AddRange(await ReadAllAsync(run));

        Assert.Equal(
            [
                RoleEvent, Event(new ContentPart("a")), Event(new ContentPart("b")), Event(new ContentPart("c")), StopEvent, "[DONE]",
            ],
            read);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task A_reader_who_hands_over_its_response_late_gets_every_event_and_an_answer_at_hand_leaves_in_one_send() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var lanes = NewLanes();
            var agent = new ScriptedAgent();
            var run = Stream(lanes, agent.Events);
            // Said before the reader hands over its response: the events wait on the lane, and the agent with them.
            agent.Say(new TextDelta("a"), new TextDelta("b"), new TextDelta("c"), new RunEnded());
            // Must not happen: the agent read, or the run ended, with no response to write into.
            await AssertNothingHappensAsync(() => agent.Produced > 1 || run.Outcome.IsCompleted,
                "the agent was read on, or the run ended, before the reader handed over its response");

            Assert.Equal(
                [RoleEvent, Event(new ContentPart("a")), Event(new ContentPart("b")), Event(new ContentPart("c")), StopEvent, "[DONE]"],
                await ReadAllAsync(run));
            // The whole answer was at hand: the lane wrote it without a flush, and the writer's flush of the end sent it.
            Assert.Equal(1, AnswerReader.Of(run).Flushes);
            await AwaitLanesAsync(lanes, live: 0, idle: 0);
        });

    [Fact]
    public Task A_long_burst_is_flushed_every_burstLimit_parts() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(burstLimit: 4);
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        // All said before the reader hands over its response (the lane does not read the agent before it): one burst.
        agent.Say([.. Enumerable.Range(0, 10).Select(AgentEvent (i) => new TextDelta($"{i}")), new RunEnded()]);

        // Role, ten deltas, finish and done: flushed after the 4th, 8th and 12th, and the writer flushes the end.
        Assert.Equal(13, (await ReadAllAsync(run)).Count);
        Assert.Equal(4, AnswerReader.Of(run).Flushes);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Events_that_come_apart_are_each_flushed_as_they_come() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);

        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        agent.Say(new TextDelta("one"));
        Assert.Equal(Event(new ContentPart("one")), await ReadOneAsync(run));
        agent.Say(new TextDelta("two"));
        Assert.Equal(Event(new ContentPart("two")), await ReadOneAsync(run));
        Assert.Equal(3, AnswerReader.Of(run).Flushes);

        agent.End();
        Assert.Equal([StopEvent, "[DONE]"], await ReadAllAsync(run));
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Slow_reader_holds_up_only_its_own_lane() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(burstLimit: 1);
        await SlowReaderHoldsUpOnlyItsOwnLaneAsync(lanes);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    // ---- the reader leaves ----------------------------------------------------------------------

    [Fact]
    public Task Reader_cancel_stops_a_busy_agent_and_the_outcome_is_cancelled() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        agent.Say(new TextDelta("Hel"));
        Assert.Equal(Event(new ContentPart("Hel")), await ReadOneAsync(run));

        // The agent is waiting for its model: its step is stopped through the token.
        run.Cancel();

        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Cancelled);
        Assert.Equal("Hel", outcome.ReplyText);
        Assert.Null(outcome.Error);
        Assert.False(outcome.Succeeded);
        Assert.Empty(await ReadAllAsync(run));
        // The lane was handed back (and, none being kept idle, shut down).
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Reader_cancel_stops_an_agent_held_back_by_a_reader_who_takes_nothing() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(burstLimit: 2);
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i} ")).ToArray());
        var run = Stream(lanes, agent.Events);
        AnswerReader.Slow(run);
        await AwaitWaitingForReaderAsync(run);

        run.Cancel();

        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        Assert.InRange(agent.Produced, 1, 2 + 3);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
        // Nothing more is written after the reader left (only the burst it had not taken); the answer ends without [DONE].
        var rest = await ReadAllAsync(run);
        Assert.DoesNotContain("[DONE]", rest);
        Assert.InRange(rest.Count, 0, 2);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Reader_cancel_of_a_completion_cancels_its_answer() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = lanes.StartCompletion(agent.Events, Header, PromptTokens);
        agent.Say(new TextDelta("Hel"));
        await AwaitConditionAsync(() => Task.FromResult(agent.Produced == 1), RemainingOrDefault);

        run.Cancel();

        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.Answer.WaitAsync(RemainingOrDefault));
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    /// <summary>An agent that says one piece, then waits, and ends quietly (no throw) when its token fires.</summary>
    private static async IAsyncEnumerable<AgentEvent> EndsQuietlyWhenCancelled([EnumeratorCancellation] CancellationToken cancellation = default)
    {
        yield return new TextDelta("a");
        // Completed by the token's own callback, and continued on it: the step is over before the token's
        // earlier callbacks (the lane's) have run.
        var stopped = new TaskCompletionSource();
        using (cancellation.Register(() => stopped.TrySetResult()))
            await stopped.Task.ConfigureAwait(false);
    }

    [Fact]
    public Task A_cancelled_run_whose_agent_ends_quietly_on_its_token_sends_nothing_more_not_even_a_finish() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var lanes = NewLanes();
            var run = Stream(lanes, EndsQuietlyWhenCancelled());
            Assert.Equal(RoleEvent, await run.ReadOneDataAsync(RemainingOrDefault));
            Assert.Equal(Event(new ContentPart("a")), await run.ReadOneDataAsync(RemainingOrDefault));

            // The agent's step ends as the token fires, which can be before the lane hears of the cancel.
            run.Cancel();

            Assert.Empty(await run.ReadAllDataAsync(RemainingOrDefault));
            Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
            await AwaitLanesAsync(lanes, live: 0, idle: 0);
        });

    [Fact]
    public Task A_run_cancelled_before_its_writer_is_handed_over_frees_its_lane_and_the_hand_over_completes_at_once() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var lanes = NewLanes();
            var agent = new ScriptedAgent();
            var run = Stream(lanes, agent.Events);

            // The reader left before it handed over its response.
            run.Cancel();

            Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
            // The lane was handed back, though no response ever came (and, none being kept idle, shut down).
            await AwaitLanesAsync(lanes, live: 0, idle: 0);
            // A response handed over now comes back at once, with nothing written into it.
            var writer = new RecordingWriter();
            Assert.True(run.WriteToAsync(writer).IsCompletedSuccessfully);
            Assert.Empty(writer.Log);
        });

    [Fact]
    public async Task Cancel_after_a_runs_answer_ended_sends_nothing_to_the_lane_which_carries_the_next_run_unaffected()
    {
        // A lane kept idle, to carry the next run: not wrapped (see the class remarks).
        var lanes = NewLanes(maxIdleLanes: 1);
        var first = Stream(lanes, Saying(new TextDelta("one"), new RunEnded()));
        Assert.Equal([RoleEvent, Event(new ContentPart("one")), StopEvent, "[DONE]"], await ReadAllAsync(first));
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var agent = new ScriptedAgent();
        var second = Stream(lanes, agent.Events);
        // The same lane: none was made for it.
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal(RoleEvent, await ReadOneAsync(second));

        // The first run's reader leaves once it has read everything, as the HTTP side's does when its request ends.
        first.Cancel();

        // Nothing was stopped: the first run's token, which its lane listened to while it carried it, did not fire.
        Assert.False(first.Stopping.IsCancellationRequested);
        Assert.False(first.Cancelled);
        Assert.True((await first.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        agent.Say(new TextDelta("two"), new RunEnded());
        Assert.Equal([Event(new ContentPart("two")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.True((await second.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        Assert.False(agent.TokenCancelled.IsCompleted);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    // ---- aborted runs ---------------------------------------------------------------------------

    [Fact]
    public Task Abort_ends_the_answer_in_band_with_an_error_then_DONE() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events, includeUsage: true);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        agent.Say(new TextDelta("Hel"));
        Assert.Equal(Event(new ContentPart("Hel")), await ReadOneAsync(run));
        var crash = new InvalidOperationException("run actor died at C:\\secret\\path");

        run.Abort(crash);

        Assert.Equal([InternalErrorEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Same(crash, outcome.Error!.Cause);
        Assert.Equal(ChatError.Internal, outcome.Error.Error);
        Assert.Equal("Hel", outcome.ReplyText);
        Assert.False(outcome.Cancelled);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Abort_with_an_AgentRunException_shows_that_error_in_band() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        var timedOut = new AgentRunException(new ChatError("agent run timed out", "api_error", "timeout", 504));

        run.Abort(timedOut);

        Assert.Equal(["""{"error":{"message":"agent run timed out","type":"api_error","code":"timeout"}}""", "[DONE]"],
            await ReadAllAsync(run));
        Assert.Same(timedOut, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Abort_of_an_agent_held_back_by_a_slow_reader_still_ends_with_the_error_then_DONE() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(burstLimit: 2);
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var run = Stream(lanes, agent.Events);
        AnswerReader.Slow(run);
        await AwaitWaitingForReaderAsync(run);

        run.Abort(new InvalidOperationException("timeout"));

        // The agent end has ended the run (it disposed of the agent) before the reader takes anything: what the reader gets is
        // what the lane held when it was aborted. (Read at once, the lane could go on a few parts before it handles the abort.)
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        var read = await ReadAllAsync(run);
        Assert.Equal(RoleEvent, read[0]);
        Assert.Equal([InternalErrorEvent, "[DONE]"], read[^2..]);
        Assert.All(read[1..^2], data => Assert.StartsWith("""{"id":"chatcmpl_42","object":"chat.completion.chunk""", data));
        Assert.InRange(read.Count, 4, 4 + 3);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public async Task Abort_of_an_agent_busy_in_a_step_that_ignores_the_token_still_ends_in_band_with_the_error_then_DONE()
    {
        // A lane kept idle: it carries the next run while the aborted agent's step goes on, and disposes of that agent once
        // the step is over. Not wrapped (see the class remarks).
        var lanes = NewLanes(maxIdleLanes: 1);
        var agent = new ScriptedAgent();
        var stepEnds = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        agent.Say(new TextDelta("Hel"), new ScriptedAgent.Stall(stepEnds.Task), new TextDelta("after the step"));
        var run = Stream(lanes, agent.Events, includeUsage: true);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));
        Assert.Equal(Event(new ContentPart("Hel")), await ReadOneAsync(run));
        await agent.Stalled.WaitAsync(RemainingOrDefault);
        var crash = new InvalidOperationException("timed out");

        run.Abort(crash);

        // The token fired, the agent does not listen: the answer ends all the same, in-band.
        Assert.Equal([InternalErrorEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Same(crash, outcome.Error!.Cause);
        Assert.Equal("Hel", outcome.ReplyText);
        // The lane is free while the step still runs, and carries the next run (the same lane: none is made).
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        Assert.False(agent.Stopped.IsCompleted);
        var next = Stream(lanes, Saying(new TextDelta("next"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("next")), StopEvent, "[DONE]"], await ReadAllAsync(next));

        // Once the step is over, the aborted agent is disposed; what it said then went nowhere (the next answer was whole).
        stepEnds.SetResult();
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public async Task Abort_and_cancel_after_the_run_ended_do_not_touch_the_next_run_on_the_lane()
    {
        // A lane kept idle, to carry the next run: not wrapped (see the class remarks).
        var lanes = NewLanes(maxIdleLanes: 1);
        var first = Stream(lanes, Saying(new TextDelta("one"), new RunEnded()));
        Assert.Equal("[DONE]", (await ReadAllAsync(first))[^1]);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var agent = new ScriptedAgent();
        var second = Stream(lanes, agent.Events);
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal(RoleEvent, await ReadOneAsync(second));
        first.Abort(new InvalidOperationException("late timeout of the first run"));
        first.Cancel();
        agent.Say(new TextDelta("two"), new RunEnded());

        Assert.Equal([Event(new ContentPart("two")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.True((await second.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        Assert.False(agent.TokenCancelled.IsCompleted);
        Assert.True((await first.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        // Neither reached the lane: the first run, over, was not stopped at all.
        Assert.False(first.Stopping.IsCancellationRequested);
        Assert.Null(first.AbortCause);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    // ---- folded answers -------------------------------------------------------------------------

    [Fact]
    public Task Completion_run_folds_the_answer_with_usage() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var run = lanes.StartCompletion(Saying(new TextDelta("Hel"), new TextDelta("lo"), new RunEnded()), Header, PromptTokens);

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);

        Assert.Null(answer.Error);
        var choice = Assert.Single(answer.Completion!.Choices);
        Assert.Equal("Hello", choice.Message.Content);
        Assert.Equal(FinishReasons.Stop, choice.FinishReason);
        Assert.Equal(new ChatUsage(PromptTokens, TokenEstimator.Estimate("Hello"), PromptTokens + TokenEstimator.Estimate("Hello")),
            answer.Completion.Usage);
        Assert.Equal("chatcmpl_42", answer.Completion.Id);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Completion_run_aborted_answers_with_the_error() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = lanes.StartCompletion(agent.Events, Header, PromptTokens);
        agent.Say(new TextDelta("Hel"));
        await AwaitConditionAsync(() => Task.FromResult(agent.Produced == 1), RemainingOrDefault);
        var timeout = new ChatError("agent run timed out", "api_error", "timeout", 504);

        run.Abort(new AgentRunException(timeout));

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);
        Assert.Null(answer.Completion);
        Assert.Equal(timeout, answer.Error!.Error);
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        Assert.Equal(timeout, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error!.Error);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Completion_of_a_failing_agent_answers_with_an_internal_error() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var crash = new InvalidOperationException("socket closed");
        agent.Say(new TextDelta("Hel"), new ScriptedAgent.Throw(crash));

        var run = lanes.StartCompletion(agent.Events, Header, PromptTokens);

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);
        Assert.Null(answer.Completion);
        Assert.Equal(new ErrorPart(ChatError.Internal, crash), answer.Error);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    // ---- agents that fail, and the lanes after them ---------------------------------------------
    // These are about the same lane serving the next run: lanes kept idle, not wrapped (see the class remarks).

    [Fact]
    public async Task Agent_that_throws_fails_only_its_run_and_the_same_lane_serves_the_next_run()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var failing = new ScriptedAgent();
        var crash = new InvalidOperationException("model connection reset");
        failing.Say(new TextDelta("Hel"), new ScriptedAgent.Throw(crash));

        var first = Stream(lanes, failing.Events, includeUsage: true);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hel")), InternalErrorEvent, "[DONE]"], await ReadAllAsync(first));
        var failed = await first.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Same(crash, failed.Error!.Cause);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("fine"), new RunEnded()));
        // The same lane: none was made for it.
        Assert.Equal(1, lanes.LiveLanes);

        Assert.Equal([RoleEvent, Event(new ContentPart("fine")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Equal("fine", (await second.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public async Task Agent_that_throws_before_its_first_event_fails_only_its_run()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var crash = new AgentRunException(new ChatError("no model configured", "invalid_request_error", "model_not_found", 404));
        var failing = new ScriptedAgent();
        failing.Say(new ScriptedAgent.Throw(crash));

        var first = Stream(lanes, failing.Events);

        Assert.Equal([RoleEvent, """{"error":{"message":"no model configured","type":"invalid_request_error","code":"model_not_found"}}""", "[DONE]"],
            await ReadAllAsync(first));
        Assert.Same(crash, (await first.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);

        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var second = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal([RoleEvent, StopEvent, "[DONE]"], await ReadAllAsync(second));
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public async Task Agent_without_an_enumerator_fails_only_its_run_on_a_fresh_lane()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var crash = new InvalidOperationException("cannot enumerate");

        var first = Stream(lanes, new BrokenAgent(crash));

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(first));
        Assert.Same(crash, (await first.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("ok"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("ok")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public async Task Agent_without_an_enumerator_fails_only_its_run_on_a_reused_lane()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var first = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal("[DONE]", (await ReadAllAsync(first))[^1]);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var crash = new InvalidOperationException("cannot enumerate");

        var second = Stream(lanes, new BrokenAgent(crash));
        Assert.Equal(1, lanes.LiveLanes);

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Same(crash, (await second.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public Task Run_started_and_aborted_at_once_on_a_fresh_lane_still_answers_with_its_error() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();

        var run = Stream(lanes, agent.Events);
        run.Abort(new InvalidOperationException("aborted at once"));

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(run));
        Assert.NotNull((await run.Outcome.WaitAsync(RemainingOrDefault)).Error);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public Task Run_started_and_cancelled_at_once_on_a_fresh_lane_is_cancelled_and_frees_the_lane() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();

        var run = Stream(lanes, agent.Events);
        run.Cancel();

        // No reader ever handed over a response (it left before): the lane is freed all the same.
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
        Assert.Empty(await ReadAllAsync(run));
    });

    [Fact]
    public Task The_outcome_asked_for_before_the_run_ends_or_after_is_the_same_one() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var early = Stream(lanes, agent.Events);
        var askedEarly = early.Outcome;
        Assert.False(askedEarly.IsCompleted);

        agent.Say(new TextDelta("done"), new RunEnded());
        await ReadAllAsync(early);
        Assert.Equal("done", (await askedEarly.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Same(askedEarly, early.Outcome);

        var late = Stream(lanes, Saying(new TextDelta("later"), new RunEnded()));
        await ReadAllAsync(late);
        // The run is over on its lane (handed back, and shut down).
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
        // Nobody asked while it ran: the task is made now, already complete.
        var askedLate = late.Outcome;
        Assert.True(askedLate.IsCompletedSuccessfully);
        Assert.Equal("later", (await askedLate).ReplyText);
    });

    [Fact]
    public async Task A_run_whose_reply_nobody_remembers_streams_it_but_leaves_it_out_of_its_outcome()
    {
        // The next run on the same lane (kept idle) must be remembered again: not wrapped (see the class remarks).
        var lanes = NewLanes(maxIdleLanes: 1);
        var forgotten = lanes.StartStreaming(Saying(new TextDelta("not "), new TextDelta("kept"), new RunEnded()), Header, includeUsage: true,
            PromptTokens, remembersReply: false);

        var events = await ReadAllAsync(forgotten);
        Assert.Equal([RoleEvent, Event(new ContentPart("not ")), Event(new ContentPart("kept")), StopEvent], events.Take(4));
        var outcome = await forgotten.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Succeeded);
        Assert.Equal("", outcome.ReplyText);
        // The usage estimate still counts the reply.
        Assert.Equal(TokenEstimator.Estimate("not kept".Length), outcome.Usage!.CompletionTokens);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        // The next run on the same lane is remembered again.
        var remembered = Stream(lanes, Saying(new TextDelta("kept"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        await ReadAllAsync(remembered);
        Assert.Equal("kept", (await remembered.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    // ---- the pool -------------------------------------------------------------------------------

    // A graph of several lanes: one interpreter actor carries them all. These specs keep lanes idle (the siblings of
    // a graph wait idle by design): not wrapped (see the class remarks), except the one that keeps none.

    private ActorMaterializer? _groupedMaterializer;

    private ActorMaterializer GroupedMaterializer => _groupedMaterializer ??= ActorMaterializer.Create(Sys, namePrefix: "grouped");

    private RunLanes NewGroupedLanes(int lanesPerGraph, int maxIdleLanes = 256, int burstLimit = 16) =>
        new(GroupedMaterializer, maxIdleLanes, lanesPerGraph, burstLimit);

    /// <summary>Waits until the grouped lanes' materializer runs exactly this many interpreters (graphs of lanes).</summary>
    private Task AwaitLaneInterpretersAsync(int interpreters) => this.AwaitRunningGraphsAsync(GroupedMaterializer, interpreters);

    [Fact]
    public async Task Lanes_made_together_share_one_interpreter_and_carry_runs_side_by_side()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 3);
        var agents = Enumerable.Range(0, 3).Select(_ => new ScriptedAgent()).ToArray();

        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();

        // A lane each, all three from the first graph made.
        Assert.Equal(3, lanes.LiveLanes);
        Assert.Equal(0, lanes.IdleLanes);
        await AwaitLaneInterpretersAsync(1);
        for (var i = agents.Length - 1; i >= 0; i--) agents[i].Say(new TextDelta($"reply {i}"), new RunEnded());
        for (var i = 0; i < runs.Length; i++)
        {
            Assert.Equal([RoleEvent, Event(new ContentPart($"reply {i}")), StopEvent, "[DONE]"], await ReadAllAsync(runs[i]));
        }
        await AwaitLanesAsync(lanes, live: 3, idle: 3);

        // A fourth run at once needs a second graph.
        var more = Enumerable.Range(0, 4).Select(_ => Stream(lanes, new ScriptedAgent().Events)).ToArray();
        Assert.Equal(6, lanes.LiveLanes);
        await AwaitLaneInterpretersAsync(2);
        foreach (var run in more) run.Cancel();
        await AwaitOnlyIdleLanesAsync(lanes, idle: 6, GroupedMaterializer, graphs: 2);
    }

    [Fact]
    public async Task Slow_reader_holds_up_only_its_own_lane_among_lanes_that_share_an_interpreter()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 2, burstLimit: 1);
        // Both runs on the two lanes of one graph.
        await SlowReaderHoldsUpOnlyItsOwnLaneAsync(lanes, whileHeldUp: () => AwaitLaneInterpretersAsync(1));
        await AwaitOnlyIdleLanesAsync(lanes, idle: 2, GroupedMaterializer, graphs: 1);
    }

    [Fact]
    public async Task A_lane_shut_down_beyond_maxIdleLanes_stops_alone_and_its_siblings_go_on()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 3, maxIdleLanes: 2);
        var agents = Enumerable.Range(0, 4).Select(_ => new ScriptedAgent()).ToArray();
        // The first graph's three lanes carry a, b and c; d needs a second graph, whose two other lanes stay idle.
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        await AwaitLanesAsync(lanes, live: 6, idle: 2);
        await AwaitLaneInterpretersAsync(2);

        agents[0].Say(new RunEnded());
        Assert.Equal("[DONE]", (await ReadAllAsync(runs[0]))[^1]);
        // Handed back beyond the cap: that lane stops, alone; its siblings still carry their runs, on their interpreter.
        await AwaitLanesAsync(lanes, live: 5, idle: 2);
        await AwaitLaneInterpretersAsync(2);
        agents[1].Say(new TextDelta("still here"), new RunEnded());
        Assert.Equal([RoleEvent, Event(new ContentPart("still here")), StopEvent, "[DONE]"], await ReadAllAsync(runs[1]));
        agents[2].Say(new RunEnded());
        Assert.Equal("[DONE]", (await ReadAllAsync(runs[2]))[^1]);

        // The first graph's last lane has stopped, and its interpreter with it.
        await AwaitLanesAsync(lanes, live: 3, idle: 2);
        await AwaitLaneInterpretersAsync(1);
        runs[3].Cancel();
        await AwaitOnlyIdleLanesAsync(lanes, idle: 2, GroupedMaterializer, graphs: 1);
    }

    [Fact]
    public Task With_no_idle_lanes_kept_lanes_are_made_one_at_a_time_and_stop_after_their_run() =>
        this.AssertNoStageLeftRunningAsync(async () =>
        {
            var lanes = NewGroupedLanes(lanesPerGraph: 3, maxIdleLanes: 0);

            var run = Stream(lanes, Saying(new TextDelta("only"), new RunEnded()));
            // Siblings would have nowhere to wait: none are made.
            Assert.Equal(1, lanes.LiveLanes);
            Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

            await AwaitLanesAsync(lanes, live: 0, idle: 0);
        }, GroupedMaterializer);

    [Fact]
    public async Task After_a_run_ends_its_lane_is_reused_for_the_next_one()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        Assert.Equal(0, lanes.LiveLanes);

        var first = Stream(lanes, Saying(new TextDelta("one"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal(0, lanes.IdleLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("one")), StopEvent, "[DONE]"], await ReadAllAsync(first));
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("two"), new RunEnded()));
        // The idle lane took it: no lane was made.
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal(0, lanes.IdleLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("two")), StopEvent, "[DONE]"], await ReadAllAsync(second));

        Assert.Equal("one", (await first.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Equal("two", (await second.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public Task Runs_at_the_same_time_get_lanes_of_their_own_and_keep_their_own_answers() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var agents = Enumerable.Range(0, 3).Select(_ => new ScriptedAgent()).ToArray();
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        // None was free for the later ones: a lane each.
        Assert.Equal(3, lanes.LiveLanes);
        await this.AwaitRunningGraphsAsync(Materializer, 3);

        for (var i = agents.Length - 1; i >= 0; i--) agents[i].Say(new TextDelta($"reply {i}"), new RunEnded());

        for (var i = 0; i < runs.Length; i++)
        {
            Assert.Equal([RoleEvent, Event(new ContentPart($"reply {i}")), StopEvent, "[DONE]"], await ReadAllAsync(runs[i]));
            Assert.Equal($"reply {i}", (await runs[i].Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        }
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public async Task Finished_lanes_beyond_maxIdleLanes_are_shut_down()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var agents = new[] { new ScriptedAgent(), new ScriptedAgent() };
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        Assert.Equal(2, lanes.LiveLanes);

        foreach (var agent in agents) agent.Say(new RunEnded());
        foreach (var run in runs) Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

        // One kept, one shut down: its graph has stopped.
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
        var next = Stream(lanes, Saying(new TextDelta("after"), new RunEnded()));
        // On the lane kept: none was made.
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("after")), StopEvent, "[DONE]"], await ReadAllAsync(next));
        await AwaitOnlyIdleLanesAsync(lanes, idle: 1);
    }

    [Fact]
    public Task With_no_idle_lanes_kept_a_finished_lane_is_shut_down() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes(maxIdleLanes: 0);

        var run = Stream(lanes, Saying(new TextDelta("only"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

        // Its graph has stopped, not only left the count.
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
        await this.AwaitRunningGraphsAsync(Materializer, 0);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);

        // The pool makes a new lane for the next run.
        var next = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal([RoleEvent, StopEvent, "[DONE]"], await ReadAllAsync(next));
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    });

    [Fact]
    public void Settings_out_of_range_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RunLanes(Materializer, maxIdleLanes: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RunLanes(Materializer, lanesPerGraph: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RunLanes(Materializer, burstLimit: 0));
    }

    // ---- lanes that stop under a run ------------------------------------------------------------
    // What an actor system shutting down does to its streams: the materializer is shut down, and every stage with it.
    // Not wrapped: the test kit's check needs the materializer's supervisor, which is gone; these assert instead that the
    // supervisor has stopped (with every graph under it) and that every lane has told the pool it stopped.

    private async Task ShutDownAsync(ActorMaterializer materializer)
    {
        var supervisor = Assert.IsType<ActorMaterializerImpl>(materializer).Supervisor;
        await WatchAsync(supervisor);
        materializer.Shutdown();
        await ExpectTerminatedAsync(supervisor);
    }

    [Fact]
    public async Task A_lane_that_stops_under_a_run_fails_that_run_instead_of_leaving_it_waiting()
    {
        var materializer = Sys.Materializer();
        var lanes = new RunLanes(materializer);
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));

        await ShutDownAsync(materializer);

        await Assert.ThrowsAsync<InvalidOperationException>(() => ReadAllAsync(run));
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Equal(ChatError.Internal, outcome.Error!.Error);
        Assert.False(outcome.Cancelled);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    }

    [Fact]
    public async Task A_lane_that_stops_while_its_run_waits_for_the_reader_hands_the_response_back_with_the_failure()
    {
        var materializer = Sys.Materializer();
        var lanes = new RunLanes(materializer, burstLimit: 2);
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var run = Stream(lanes, agent.Events);
        var reader = AnswerReader.Slow(run);
        await AwaitWaitingForReaderAsync(run);

        await ShutDownAsync(materializer);

        // The reader has not taken a byte, yet the response comes back without waiting for it, and ends with the failure.
        await reader.HandedBack.WaitAsync(RemainingOrDefault);
        await Assert.ThrowsAsync<InvalidOperationException>(() => ReadAllAsync(run));
        Assert.Equal(ChatError.Internal, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error!.Error);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    }
}
