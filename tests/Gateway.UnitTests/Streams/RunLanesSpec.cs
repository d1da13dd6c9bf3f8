using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Akka.Streams;
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
public sealed class RunLanesSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_42", 1767225600, "openclaw");
    private const int PromptTokens = 3;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);
    private const string InternalErrorEvent = """{"error":{"message":"internal error","type":"api_error"}}""";

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private static readonly string RoleEvent = Event(RolePart.Instance);
    private static readonly string StopEvent = Event(new FinishPart(FinishReasons.Stop));

    private RunLanes NewLanes(int maxIdleLanes = 256) => new(Sys.Materializer(), maxIdleLanes);

    private static StreamingRun Stream(RunLanes lanes, IAsyncEnumerable<AgentEvent> agent, bool includeUsage = false, int burstLimit = 16) =>
        lanes.StartStreaming(agent, Header, includeUsage, PromptTokens, burstLimit);

    private Task AwaitWaitingForReaderAsync(StreamingRun run) =>
        AwaitConditionAsync(() => Task.FromResult(run.WaitsForReader), RemainingOrDefault, "expected the run to wait for its reader");

    private Task<List<string>> ReadAllAsync(StreamingRun run) => run.ReadAllDataAsync(RemainingOrDefault);

    private Task<string> ReadOneAsync(StreamingRun run) => run.ReadOneDataAsync(RemainingOrDefault);

    private Task AwaitLanesAsync(RunLanes lanes, int live, int idle) =>
        AwaitConditionAsync(() => Task.FromResult(lanes.LiveLanes == live && lanes.IdleLanes == idle), RemainingOrDefault,
            $"expected {live} live and {idle} idle lanes");

    /// <summary>
    /// A reader that takes nothing holds up its own run (the agent waits once a flush waits for the reader) while
    /// a second run, on another lane, answers in full; <paramref name="interpreters"/>, when given, is how
    /// many interpreters the grouped lanes' materializer runs meanwhile.
    /// </summary>
    private async Task SlowReaderHoldsUpOnlyItsOwnLaneAsync(RunLanes lanes, int? interpreters = null)
    {
        var stuck = new ScriptedAgent();
        stuck.Say(Enumerable.Range(0, 20).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var slow = Stream(lanes, stuck.Events, burstLimit: 1);
        AnswerReader.Slow(slow);
        await AwaitWaitingForReaderAsync(slow);

        var other = Stream(lanes, Saying(new TextDelta("free"), new RunEnded()));

        Assert.Equal([RoleEvent, Event(new ContentPart("free")), StopEvent, "[DONE]"], await ReadAllAsync(other));
        Assert.Equal(2, lanes.LiveLanes);
        if (interpreters is { } expected) Assert.Equal(expected, await CountLaneInterpretersAsync());
        Assert.InRange(stuck.Produced, 0, 1 + 3);
        slow.Cancel();
        await AwaitLanesAsync(lanes, live: 2, idle: 2);
    }

    // ---- agents ---------------------------------------------------------------------------------

    /// <summary>An agent that says these events, as fast as it is asked.</summary>
    private static async IAsyncEnumerable<AgentEvent> Saying(params AgentEvent[] events)
    {
        foreach (var agentEvent in events)
        {
            await Task.Yield();
            yield return agentEvent;
        }
    }

    // ---- streamed answers -----------------------------------------------------------------------

    [Fact]
    public async Task Reader_gets_the_sse_items_in_wire_order_ending_with_DONE()
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
    }

    [Fact]
    public async Task Without_include_usage_no_usage_event_is_sent()
    {
        var lanes = NewLanes();
        var run = Stream(lanes, Saying(new TextDelta("Hi"), new UsageReport(new TokenUsage(5, 1)), new RunEnded()), includeUsage: false);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        // The session still learns the usage.
        Assert.Equal(new TokenUsage(5, 1), (await run.Outcome.WaitAsync(RemainingOrDefault)).Usage);
    }

    [Fact]
    public async Task Agent_that_ends_without_RunEnded_finishes_with_stop_and_its_enumerator_is_finished()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("Hi"));
        agent.End();

        var run = Stream(lanes, agent.Events);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.False(agent.TokenCancelled.IsCompleted);
    }

    [Fact]
    public async Task Agent_is_disposed_once_it_said_RunEnded_even_if_it_would_go_on()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("Hi"), new RunEnded(), new TextDelta("never sent"));

        var run = Stream(lanes, agent.Events);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hi")), StopEvent, "[DONE]"], await ReadAllAsync(run));
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.Equal(2, agent.Produced);
    }

    [Fact]
    public async Task Reader_gets_the_role_before_the_agent_says_anything()
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
    }

    [Fact]
    public async Task Slow_reader_backpressures_the_agent()
    {
        const int burst = 8;
        const int deltas = 1000;
        const int slack = 4; // the few events in flight between the agent and the response, and the one the reader is parsing
        var lanes = NewLanes();
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

        var run = Stream(lanes, Counting(), burstLimit: burst);
        // Every flush waits until the reader has taken all that was written.
        AnswerReader.Slow(run);

        var read = new List<string>();
        for (var round = 0; round < 5; round++)
        {
            // The lane writes a burst, then waits for the reader, and the agent with it.
            await AwaitWaitingForReaderAsync(run);
            await Task.Delay(Quiet);
            Assert.True(run.WaitsForReader);
            Assert.InRange(Volatile.Read(ref produced), read.Count - 1, read.Count + burst + slack);

            for (var i = 0; i < 50; i++) read.Add(await ReadOneAsync(run));
        }

        read.AddRange(await ReadAllAsync(run));
        Assert.Equal(deltas, Volatile.Read(ref produced));
        Assert.Equal(1 + deltas + 2, read.Count);
        Assert.Equal(RoleEvent, read[0]);
        Assert.Equal(Event(new ContentPart("0 ")), read[1]);
        Assert.Equal(Event(new ContentPart("999 ")), read[deltas]);
        Assert.Equal([StopEvent, "[DONE]"], read[^2..]);
    }

    [Fact]
    public async Task Reader_that_falls_behind_at_the_end_still_gets_DONE()
    {
        var lanes = NewLanes();
        var run = Stream(lanes, Saying(new TextDelta("a"), new TextDelta("b"), new TextDelta("c")), burstLimit: 2);
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
    }

    [Fact]
    public async Task A_reader_who_hands_over_its_response_late_gets_every_event_and_an_answer_at_hand_leaves_in_one_send()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        // Said before the reader hands over its response: the events wait on the lane, and the agent with them.
        agent.Say(new TextDelta("a"), new TextDelta("b"), new TextDelta("c"), new RunEnded());
        await Task.Delay(Quiet);
        Assert.InRange(agent.Produced, 0, 1);
        Assert.False(run.Outcome.IsCompleted);

        Assert.Equal(
            [RoleEvent, Event(new ContentPart("a")), Event(new ContentPart("b")), Event(new ContentPart("c")), StopEvent, "[DONE]"],
            await ReadAllAsync(run));
        // The whole answer was at hand: the lane wrote it without a flush, and the writer's flush of the end sent it.
        Assert.Equal(1, AnswerReader.Of(run).Flushes);
    }

    [Fact]
    public async Task A_long_burst_is_flushed_every_burstLimit_parts()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events, burstLimit: 4);
        agent.Say([.. Enumerable.Range(0, 10).Select(AgentEvent (i) => new TextDelta($"{i}")), new RunEnded()]);
        await Task.Delay(Quiet);

        // Role, ten deltas, finish and done: flushed after the 4th, 8th and 12th, and the writer flushes the end.
        Assert.Equal(13, (await ReadAllAsync(run)).Count);
        Assert.Equal(4, AnswerReader.Of(run).Flushes);
    }

    [Fact]
    public async Task Events_that_come_apart_are_each_flushed_as_they_come()
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
    }

    [Fact]
    public async Task Slow_reader_holds_up_only_its_own_lane()
    {
        var lanes = NewLanes();
        await SlowReaderHoldsUpOnlyItsOwnLaneAsync(lanes);
    }

    // ---- the reader leaves ----------------------------------------------------------------------

    [Fact]
    public async Task Reader_cancel_stops_a_busy_agent_and_the_outcome_is_cancelled()
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
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Reader_cancel_stops_an_agent_held_back_by_a_reader_who_takes_nothing()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i} ")).ToArray());
        var run = Stream(lanes, agent.Events, burstLimit: 2);
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
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Reader_cancel_of_a_completion_cancels_its_answer()
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
    }

    // ---- aborted runs ---------------------------------------------------------------------------

    [Fact]
    public async Task Abort_ends_the_answer_in_band_with_an_error_then_DONE()
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
    }

    [Fact]
    public async Task Abort_with_an_AgentRunException_shows_that_error_in_band()
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
    }

    [Fact]
    public async Task Abort_of_an_agent_held_back_by_a_slow_reader_still_ends_with_the_error_then_DONE()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var run = Stream(lanes, agent.Events, burstLimit: 2);
        AnswerReader.Slow(run);
        await AwaitWaitingForReaderAsync(run);

        run.Abort(new InvalidOperationException("timeout"));

        var read = await ReadAllAsync(run);
        Assert.Equal(RoleEvent, read[0]);
        Assert.Equal([InternalErrorEvent, "[DONE]"], read[^2..]);
        Assert.All(read[1..^2], data => Assert.StartsWith("""{"id":"chatcmpl_42","object":"chat.completion.chunk""", data));
        Assert.InRange(read.Count, 4, 4 + 3);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
    }

    [Fact]
    public async Task Abort_and_cancel_after_the_run_ended_do_not_touch_the_next_run_on_the_lane()
    {
        var lanes = NewLanes();
        var first = Stream(lanes, Saying(new TextDelta("one"), new RunEnded()));
        Assert.Equal("[DONE]", (await ReadAllAsync(first))[^1]);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var agent = new ScriptedAgent();
        var second = Stream(lanes, agent.Events);
        Assert.Equal(RoleEvent, await ReadOneAsync(second));
        first.Abort(new InvalidOperationException("late timeout of the first run"));
        first.Cancel();
        agent.Say(new TextDelta("two"), new RunEnded());

        Assert.Equal([Event(new ContentPart("two")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.True((await second.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        Assert.False(agent.TokenCancelled.IsCompleted);
        Assert.True((await first.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
    }

    // ---- folded answers -------------------------------------------------------------------------

    [Fact]
    public async Task Completion_run_folds_the_answer_with_usage()
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
    }

    [Fact]
    public async Task Completion_run_aborted_answers_with_the_error()
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
    }

    [Fact]
    public async Task Completion_of_a_failing_agent_answers_with_an_internal_error()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();
        var crash = new InvalidOperationException("socket closed");
        agent.Say(new TextDelta("Hel"), new ScriptedAgent.Throw(crash));

        var run = lanes.StartCompletion(agent.Events, Header, PromptTokens);

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);
        Assert.Null(answer.Completion);
        Assert.Equal(new ErrorPart(ChatError.Internal, crash), answer.Error);
    }

    // ---- agents that fail, and the lanes after them ---------------------------------------------

    [Fact]
    public async Task Agent_that_throws_fails_only_its_run_and_the_same_lane_serves_the_next_run()
    {
        var lanes = NewLanes();
        var failing = new ScriptedAgent();
        var crash = new InvalidOperationException("model connection reset");
        failing.Say(new TextDelta("Hel"), new ScriptedAgent.Throw(crash));

        var first = Stream(lanes, failing.Events, includeUsage: true);

        Assert.Equal([RoleEvent, Event(new ContentPart("Hel")), InternalErrorEvent, "[DONE]"], await ReadAllAsync(first));
        var failed = await first.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Same(crash, failed.Error!.Cause);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("fine"), new RunEnded()));

        Assert.Equal([RoleEvent, Event(new ContentPart("fine")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Equal("fine", (await second.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Same(first.Lane, second.Lane);
        Assert.False(second.Lane!.Stopped);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Agent_that_throws_before_its_first_event_fails_only_its_run()
    {
        var lanes = NewLanes();
        var crash = new AgentRunException(new ChatError("no model configured", "invalid_request_error", "model_not_found", 404));
        var failing = new ScriptedAgent();
        failing.Say(new ScriptedAgent.Throw(crash));

        var first = Stream(lanes, failing.Events);

        Assert.Equal([RoleEvent, """{"error":{"message":"no model configured","type":"invalid_request_error","code":"model_not_found"}}""", "[DONE]"],
            await ReadAllAsync(first));
        Assert.Same(crash, (await first.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);

        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var second = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal([RoleEvent, StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Same(first.Lane, second.Lane);
    }

    [Fact]
    public async Task Agent_without_an_enumerator_fails_only_its_run_on_a_fresh_lane()
    {
        var lanes = NewLanes();
        var crash = new InvalidOperationException("cannot enumerate");

        var first = Stream(lanes, new BrokenAgent(crash));

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(first));
        Assert.Same(crash, (await first.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("ok"), new RunEnded()));
        Assert.Equal([RoleEvent, Event(new ContentPart("ok")), StopEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Same(first.Lane, second.Lane);
    }

    [Fact]
    public async Task Agent_without_an_enumerator_fails_only_its_run_on_a_reused_lane()
    {
        var lanes = NewLanes();
        var first = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal("[DONE]", (await ReadAllAsync(first))[^1]);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var crash = new InvalidOperationException("cannot enumerate");

        var second = Stream(lanes, new BrokenAgent(crash));

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(second));
        Assert.Same(crash, (await second.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
        Assert.Same(first.Lane, second.Lane);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Run_started_and_aborted_at_once_on_a_fresh_lane_still_answers_with_its_error()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();

        var run = Stream(lanes, agent.Events);
        run.Abort(new InvalidOperationException("aborted at once"));

        Assert.Equal([RoleEvent, InternalErrorEvent, "[DONE]"], await ReadAllAsync(run));
        Assert.NotNull((await run.Outcome.WaitAsync(RemainingOrDefault)).Error);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Run_started_and_cancelled_at_once_on_a_fresh_lane_is_cancelled_and_frees_the_lane()
    {
        var lanes = NewLanes();
        var agent = new ScriptedAgent();

        var run = Stream(lanes, agent.Events, burstLimit: 1);
        run.Cancel();

        // No reader ever handed over a response (it left before): the lane is freed all the same.
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Cancelled);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        Assert.Empty(await ReadAllAsync(run));
    }

    [Fact]
    public async Task The_outcome_asked_for_before_the_run_ends_or_after_is_the_same_one()
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
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        // Nobody asked while it ran: the task is made now, already complete.
        var askedLate = late.Outcome;
        Assert.True(askedLate.IsCompletedSuccessfully);
        Assert.Equal("later", (await askedLate).ReplyText);
    }

    [Fact]
    public async Task A_run_whose_reply_nobody_remembers_streams_it_but_leaves_it_out_of_its_outcome()
    {
        var lanes = NewLanes();
        var forgotten = lanes.StartStreaming(Saying(new TextDelta("not "), new TextDelta("kept"), new RunEnded()), Header, includeUsage: true,
            PromptTokens, burstLimit: 16, remembersReply: false);

        var events = await ReadAllAsync(forgotten);
        Assert.Equal([RoleEvent, Event(new ContentPart("not ")), Event(new ContentPart("kept")), StopEvent], events.Take(4));
        var outcome = await forgotten.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Succeeded);
        Assert.Equal("", outcome.ReplyText);
        // The usage estimate still counts the reply.
        Assert.Equal(TokenEstimator.Estimate("not kept".Length), outcome.Usage!.CompletionTokens);

        // The next run on the same lane is remembered again.
        var remembered = Stream(lanes, Saying(new TextDelta("kept"), new RunEnded()));
        await ReadAllAsync(remembered);
        Assert.Same(forgotten.Lane, remembered.Lane);
        Assert.Equal("kept", (await remembered.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
    }

    // ---- the pool -------------------------------------------------------------------------------

    // A graph of several lanes: one interpreter actor carries them all.

    private const string GroupedLanesPrefix = "grouped";

    private RunLanes NewGroupedLanes(int lanesPerGraph, int maxIdleLanes = 256) =>
        new(ActorMaterializer.Create(Sys, namePrefix: GroupedLanesPrefix), maxIdleLanes, lanesPerGraph);

    /// <summary>The interpreter actors the grouped lanes' materializer runs now.</summary>
    private async Task<int> CountLaneInterpretersAsync()
    {
        var selection = Sys.ActorSelection($"/user/*/{GroupedLanesPrefix}-*");
        var probe = CreateTestProbe();
        selection.Tell(new Akka.Actor.Identify(null), probe.Ref);
        var found = 0;
        while (await probe.ReceiveOneAsync(Quiet) is Akka.Actor.ActorIdentity { Subject: not null }) found++;
        return found;
    }

    [Fact]
    public async Task Lanes_made_together_share_one_interpreter_and_carry_runs_side_by_side()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 3);
        var agents = Enumerable.Range(0, 3).Select(_ => new ScriptedAgent()).ToArray();

        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();

        Assert.Equal(3, lanes.LiveLanes);
        Assert.Equal(0, lanes.IdleLanes);
        Assert.Equal(3, runs.Select(run => run.Lane).Distinct().Count());
        Assert.Equal(1, await CountLaneInterpretersAsync());
        for (var i = agents.Length - 1; i >= 0; i--) agents[i].Say(new TextDelta($"reply {i}"), new RunEnded());
        for (var i = 0; i < runs.Length; i++)
        {
            Assert.Equal([RoleEvent, Event(new ContentPart($"reply {i}")), StopEvent, "[DONE]"], await ReadAllAsync(runs[i]));
        }
        await AwaitLanesAsync(lanes, live: 3, idle: 3);

        // A fourth run at once needs a second graph.
        var more = agents.Select(agent => Stream(lanes, new ScriptedAgent().Events)).Append(Stream(lanes, new ScriptedAgent().Events)).ToArray();
        Assert.Equal(6, lanes.LiveLanes);
        Assert.Equal(2, await CountLaneInterpretersAsync());
        foreach (var run in more) run.Cancel();
        await AwaitLanesAsync(lanes, live: 6, idle: 6);
    }

    [Fact]
    public async Task Slow_reader_holds_up_only_its_own_lane_among_lanes_that_share_an_interpreter()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 2);
        await SlowReaderHoldsUpOnlyItsOwnLaneAsync(lanes, interpreters: 1);
    }

    [Fact]
    public async Task A_lane_shut_down_beyond_maxIdleLanes_stops_alone_and_its_siblings_go_on()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 3, maxIdleLanes: 2);
        var agents = Enumerable.Range(0, 4).Select(_ => new ScriptedAgent()).ToArray();
        // The first graph's three lanes carry a, b and c; d needs a second graph, whose two other lanes stay idle.
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        await AwaitLanesAsync(lanes, live: 6, idle: 2);
        Assert.Equal(2, await CountLaneInterpretersAsync());

        agents[0].Say(new RunEnded());
        Assert.Equal("[DONE]", (await ReadAllAsync(runs[0]))[^1]);
        // Handed back beyond the cap: that lane stops, alone; its siblings still carry their runs.
        await AwaitLanesAsync(lanes, live: 5, idle: 2);
        Assert.True(runs[0].Lane!.Stopped);
        Assert.False(runs[1].Lane!.Stopped);
        agents[1].Say(new TextDelta("still here"), new RunEnded());
        Assert.Equal([RoleEvent, Event(new ContentPart("still here")), StopEvent, "[DONE]"], await ReadAllAsync(runs[1]));
        agents[2].Say(new RunEnded());
        Assert.Equal("[DONE]", (await ReadAllAsync(runs[2]))[^1]);

        // The first graph's last lane has stopped, and its interpreter with it.
        await AwaitLanesAsync(lanes, live: 3, idle: 2);
        await AwaitConditionAsync(async () => await CountLaneInterpretersAsync() == 1, RemainingOrDefault);
        runs[3].Cancel();
        await AwaitLanesAsync(lanes, live: 2, idle: 2);
    }

    [Fact]
    public async Task With_no_idle_lanes_kept_lanes_are_made_one_at_a_time_and_stop_after_their_run()
    {
        var lanes = NewGroupedLanes(lanesPerGraph: 3, maxIdleLanes: 0);

        var run = Stream(lanes, Saying(new TextDelta("only"), new RunEnded()));
        // Siblings would have nowhere to wait: none are made.
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

        await AwaitLanesAsync(lanes, live: 0, idle: 0);
        await AwaitConditionAsync(async () => await CountLaneInterpretersAsync() == 0, RemainingOrDefault);
    }

    [Fact]
    public async Task After_a_run_ends_its_lane_is_reused_for_the_next_one()
    {
        var lanes = NewLanes();
        Assert.Equal(0, lanes.LiveLanes);

        var first = Stream(lanes, Saying(new TextDelta("one"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal(0, lanes.IdleLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("one")), StopEvent, "[DONE]"], await ReadAllAsync(first));
        await AwaitLanesAsync(lanes, live: 1, idle: 1);

        var second = Stream(lanes, Saying(new TextDelta("two"), new RunEnded()));
        Assert.Equal(0, lanes.IdleLanes);
        Assert.Equal([RoleEvent, Event(new ContentPart("two")), StopEvent, "[DONE]"], await ReadAllAsync(second));

        Assert.Equal("one", (await first.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Equal("two", (await second.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Same(first.Lane, second.Lane);
        await AwaitLanesAsync(lanes, live: 1, idle: 1);
    }

    [Fact]
    public async Task Runs_at_the_same_time_get_lanes_of_their_own_and_keep_their_own_answers()
    {
        var lanes = NewLanes();
        var agents = Enumerable.Range(0, 3).Select(_ => new ScriptedAgent()).ToArray();
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        Assert.Equal(3, lanes.LiveLanes);
        Assert.Equal(3, runs.Select(run => run.Lane).Distinct().Count());

        for (var i = agents.Length - 1; i >= 0; i--) agents[i].Say(new TextDelta($"reply {i}"), new RunEnded());

        for (var i = 0; i < runs.Length; i++)
        {
            Assert.Equal([RoleEvent, Event(new ContentPart($"reply {i}")), StopEvent, "[DONE]"], await ReadAllAsync(runs[i]));
            Assert.Equal($"reply {i}", (await runs[i].Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        }
        await AwaitLanesAsync(lanes, live: 3, idle: 3);
    }

    [Fact]
    public async Task Finished_lanes_beyond_maxIdleLanes_are_shut_down()
    {
        var lanes = NewLanes(maxIdleLanes: 1);
        var agents = new[] { new ScriptedAgent(), new ScriptedAgent() };
        var runs = agents.Select(agent => Stream(lanes, agent.Events)).ToArray();
        Assert.Equal(2, lanes.LiveLanes);

        foreach (var agent in agents) agent.Say(new RunEnded());
        foreach (var run in runs) Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

        await AwaitLanesAsync(lanes, live: 1, idle: 1);
        var next = Stream(lanes, Saying(new TextDelta("after"), new RunEnded()));
        Assert.Equal([RoleEvent, Event(new ContentPart("after")), StopEvent, "[DONE]"], await ReadAllAsync(next));
        Assert.Contains(next.Lane, runs.Select(run => run.Lane));
    }

    [Fact]
    public async Task With_no_idle_lanes_kept_a_finished_lane_is_shut_down()
    {
        var lanes = NewLanes(maxIdleLanes: 0);

        var run = Stream(lanes, Saying(new TextDelta("only"), new RunEnded()));
        Assert.Equal(1, lanes.LiveLanes);
        Assert.Equal("[DONE]", (await ReadAllAsync(run))[^1]);

        await AwaitLanesAsync(lanes, live: 0, idle: 0);
        Assert.True(run.Lane!.Stopped);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);

        // The pool makes a new lane for the next run.
        var next = Stream(lanes, Saying(new RunEnded()));
        Assert.Equal([RoleEvent, StopEvent, "[DONE]"], await ReadAllAsync(next));
        Assert.NotSame(run.Lane, next.Lane);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    }

    [Fact]
    public void Negative_maxIdleLanes_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RunLanes(Sys.Materializer(), maxIdleLanes: -1));
    }

    [Fact]
    public async Task A_lane_that_stops_under_a_run_fails_that_run_instead_of_leaving_it_waiting()
    {
        var materializer = Sys.Materializer();
        var lanes = new RunLanes(materializer);
        var agent = new ScriptedAgent();
        var run = Stream(lanes, agent.Events);
        Assert.Equal(RoleEvent, await ReadOneAsync(run));

        // What an actor system shutting down does to its streams.
        materializer.Shutdown();

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
        var lanes = new RunLanes(materializer);
        var agent = new ScriptedAgent();
        agent.Say(Enumerable.Range(0, 50).Select(AgentEvent (i) => new TextDelta($"{i}")).ToArray());
        var run = Stream(lanes, agent.Events, burstLimit: 2);
        var reader = AnswerReader.Slow(run);
        await AwaitWaitingForReaderAsync(run);

        materializer.Shutdown();

        // The reader has not taken a byte, yet the response comes back without waiting for it, and ends with the failure.
        await reader.HandedBack.WaitAsync(RemainingOrDefault);
        await Assert.ThrowsAsync<InvalidOperationException>(() => ReadAllAsync(run));
        Assert.Equal(ChatError.Internal, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error!.Error);
        await AwaitLanesAsync(lanes, live: 0, idle: 0);
    }
}
