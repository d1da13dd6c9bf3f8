using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Akka.TestKit;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// Spec §8: the answer's wire order, enforced by <see cref="WireOrderStage"/> alone. On a lane the stage
/// sees each run bracketed by the agent end: <see cref="RunStarting"/>, the agent's events, then one
/// terminal event (<see cref="RunEnded"/>, <see cref="RunFailed"/>, <see cref="AgentFault"/> or
/// <see cref="RunCancelled"/>); these specs feed it exactly that, with no agent end in front.
/// </summary>
public sealed class WireOrderStageSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private const int PromptTokens = 7;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);
    private static readonly ChatAnswerHeader Header = new("chatcmpl_7", 1767225600, "openclaw");

    private static readonly RolePart Role = RolePart.Instance;
    private static readonly DonePart Done = DonePart.Instance;

    private static ContentPart Content(string text) => new(text);

    private static FinishPart Finish(string reason = FinishReasons.Stop) => new(reason);

    private static UsagePart Usage(int prompt, int completion) => new(new TokenUsage(prompt, completion));

    private ActorMaterializer? _materializer;

    private ActorMaterializer Materializer => _materializer ??= Sys.Materializer();

    /// <summary>Every spec ends with the stage stopped (its input ran out, or its reader cancelled), and fails if a stage is left running.</summary>
    private Task NothingLeftRunningAfterAsync(Func<Task> spec) => this.AssertNoStageLeftRunningAsync(spec, Materializer);

    /// <summary>The stage never reads a run's agent (the lane's agent end does); this one fails the test if it is read.</summary>
    private static IAsyncEnumerable<AgentEvent> UnreadAgent() =>
        TestAgents.Unread("The wire order stage must not read the agent itself.");

    /// <summary>A run as the lane hands it over: streamed (usage only when asked) or folded (always with usage).</summary>
    private static AnswerRun NewRun(bool includeUsage) =>
        includeUsage
            ? new CompletionRun(UnreadAgent(), Header, PromptTokens, null)
            : new StreamingRun(UnreadAgent(), Header, includeUsage: false, PromptTokens, null);

    /// <summary>Feeds the stage a finished list of events and collects every part, until the stage has nothing more.</summary>
    private async Task<IReadOnlyList<ChatStreamPart>> RunPartsAsync(params AgentEvent[] events) =>
        await Source.From(events)
            .Via(new WireOrderStage())
            .RunWith(Sink.Seq<ChatStreamPart>(), Materializer)
            .WaitAsync(RemainingOrDefault);

    /// <summary>
    /// One run through the stage: its parts without the opening marker (asserted to come first, once, for this run),
    /// and its outcome.
    /// </summary>
    private async Task<(IReadOnlyList<ChatStreamPart> Parts, TurnOutcome Outcome)> RunAsync(bool includeUsage, params AgentEvent[] events)
    {
        var run = NewRun(includeUsage);
        var parts = await RunPartsAsync([new RunStarting(run), .. events]);
        var opened = Assert.IsType<RunOpened>(parts[0]);
        Assert.Same(run, opened.Run);
        Assert.DoesNotContain(parts.Skip(1), part => part is RunOpened);
        return (parts.Skip(1).ToList(), await run.Outcome.WaitAsync(RemainingOrDefault));
    }

    /// <summary>A controllable agent end, the stage's pulls on it, and a reader that requests explicitly.</summary>
    private sealed record Probed(TestPublisher.Probe<AgentEvent> Agent, TestProbe Pulls, TestSubscriber.Probe<ChatStreamPart> Reader);

    private Probed Materialize()
    {
        var pulls = CreateTestProbe();
        var (agent, reader) = this.SourceProbe<AgentEvent>()
            .Via(new ReportPulls<AgentEvent>(pulls.Ref))
            .Via(new WireOrderStage())
            .ToMaterialized(this.SinkProbe<ChatStreamPart>(), Keep.Both)
            .Run(Materializer);
        return new Probed(agent, pulls, reader);
    }

    /// <summary>Stops a probed stage: its reader cancels, and the stage passes that on to the agent end.</summary>
    private static async Task StopAsync(Probed stage)
    {
        await stage.Reader.CancelAsync();
        await stage.Agent.ExpectCancellationAsync();
    }

    /// <summary>Starts <paramref name="run"/> on a probed stage: one pull for the marker, then the opening marker out.</summary>
    private static async Task OpenAsync(Probed stage, AnswerRun run)
    {
        await stage.Reader.RequestAsync(1);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await stage.Agent.SendNextAsync(new RunStarting(run));
        Assert.Same(run, Assert.IsType<RunOpened>(await stage.Reader.ExpectNextAsync()).Run);
    }

    // ---- order of a normal run ------------------------------------------------------------------

    [Fact]
    public Task Normal_run_is_role_then_content_then_one_finish_then_done() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: false,
            new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(3, 2)), new RunEnded());

        Assert.Equal([Role, Content("Hel"), Content("lo"), Finish(), Done], parts);
    });

    [Fact]
    public Task With_include_usage_a_usage_part_comes_right_before_done() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: true,
            new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(3, 2)), new RunEnded());

        Assert.Equal([Role, Content("Hel"), Content("lo"), Finish(), Usage(3, 2), Done], parts);
    });

    [Fact]
    public Task Empty_text_deltas_send_nothing() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: false, new TextDelta(""), new TextDelta("a"), new TextDelta(""), new RunEnded());

        Assert.Equal([Role, Content("a"), Finish(), Done], parts);
    });

    [Fact]
    public Task Tool_call_deltas_pass_through_in_order() => NothingLeftRunningAfterAsync(async () =>
    {
        var first = new ToolCallDelta(0, "call_1", "lookup", "{\"q\":");
        var second = new ToolCallDelta(0, null, null, "\"x\"}");

        var (parts, _) = await RunAsync(includeUsage: false, first, second, new RunEnded(FinishReasons.ToolCalls));

        Assert.Equal([Role, new ToolCallPart(first), new ToolCallPart(second), Finish(FinishReasons.ToolCalls), Done], parts);
    });

    [Fact]
    public Task Role_part_is_sent_before_the_agent_is_pulled() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        await OpenAsync(stage, NewRun(includeUsage: false));

        await stage.Reader.RequestAsync(1);

        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        // Must not happen, and no event would tell of a pull that did not come: a short "nothing happens" window.
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await StopAsync(stage);
    });

    [Fact]
    public Task Text_deltas_are_counted_for_the_metric() => NothingLeftRunningAfterAsync(async () =>
    {
        var lengths = new List<int>();
        var run = new StreamingRun(UnreadAgent(), Header, includeUsage: false, PromptTokens, lengths.Add);

        await RunPartsAsync(new RunStarting(run), new TextDelta("Hel"), new TextDelta(""), new TextDelta("lo!"), new RunEnded());

        Assert.Equal([3, 3], lengths);
    });

    // ---- empty, failed and ended runs -----------------------------------------------------------

    [Fact]
    public Task Empty_run_is_role_then_finish_stop_then_done() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: false, new RunEnded());

        Assert.Equal([Role, Finish(), Done], parts);
    });

    [Fact]
    public Task Empty_run_with_include_usage_reports_the_prompt_estimate_and_no_completion_tokens() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: true, new RunEnded());

        Assert.Equal([Role, Finish(), Usage(PromptTokens, 0), Done], parts);
    });

    [Fact]
    public Task Agent_failing_midway_ends_with_an_internal_error_then_done_and_no_finish() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewRun(includeUsage: true);
        var crash = new InvalidOperationException("model connection reset");
        await OpenAsync(stage, run);

        await stage.Reader.RequestAsync(10);
        await stage.Agent.SendNextAsync(new TextDelta("Hel"));
        await stage.Agent.SendNextAsync(new AgentFault(crash));

        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        Assert.Equal(Content("Hel"), await stage.Reader.ExpectNextAsync());
        var error = Assert.IsType<ErrorPart>(await stage.Reader.ExpectNextAsync());
        Assert.Equal(Done, await stage.Reader.ExpectNextAsync());
        // The lane goes on: the next thing after done is the next run's opening (nothing came after done, and the stage did not complete).
        var next = NewRun(includeUsage: false);
        await stage.Agent.SendNextAsync(new RunStarting(next));
        Assert.Same(next, Assert.IsType<RunOpened>(await stage.Reader.ExpectNextAsync()).Run);

        Assert.Equal(ChatError.Internal, error.Error);
        Assert.Equal(new ChatError("internal error", "api_error"), error.Error);
        Assert.Same(crash, error.Cause);
        Assert.Equal(error, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error);
        await StopAsync(stage);
    });

    [Fact]
    public Task Agent_failing_with_an_AgentRunException_shows_that_exceptions_own_error() => NothingLeftRunningAfterAsync(async () =>
    {
        var timeout = new ChatError("upstream model timed out", "api_error", "timeout", 504);
        var crash = new AgentRunException(timeout);

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta("Hel"), new AgentFault(crash));

        Assert.Equal([Role, Content("Hel"), new ErrorPart(timeout, crash), Done], parts);
        Assert.Same(crash, outcome.Error!.Cause);
    });

    [Fact]
    public Task Agent_fault_wrapped_by_a_failed_task_is_judged_by_the_exception_inside() => NothingLeftRunningAfterAsync(async () =>
    {
        var timeout = new ChatError("upstream model timed out", "api_error", "timeout", 504);
        var crash = new AgentRunException(timeout);

        var (parts, outcome) = await RunAsync(includeUsage: false, new AgentFault(new AggregateException(crash)));

        Assert.Equal([Role, new ErrorPart(timeout, crash), Done], parts);
        Assert.Same(crash, outcome.Error!.Cause);
    });

    [Fact]
    public Task Agent_failing_before_its_first_event_still_gets_the_role_part_first() => NothingLeftRunningAfterAsync(async () =>
    {
        var crash = new InvalidOperationException("no route to model");

        var (parts, _) = await RunAsync(includeUsage: true, new AgentFault(crash));

        Assert.Equal([Role, new ErrorPart(ChatError.Internal, crash), Done], parts);
    });

    [Fact]
    public Task RunFailed_event_ends_with_its_error_then_done() => NothingLeftRunningAfterAsync(async () =>
    {
        var refused = new ChatError("Upstream model rejected the key.", "authentication_error", null, 502);

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta("Hel"), new RunFailed(refused));

        Assert.Equal([Role, Content("Hel"), new ErrorPart(refused, null), Done], parts);
        Assert.Equal(new ErrorPart(refused, null), outcome.Error);
    });

    [Fact]
    public Task RunEnded_with_tool_calls_finishes_with_that_reason() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, outcome) = await RunAsync(includeUsage: false, new RunEnded(FinishReasons.ToolCalls));

        Assert.Equal([Role, Finish(FinishReasons.ToolCalls), Done], parts);
        Assert.Equal(FinishReasons.ToolCalls, outcome.FinishReason);
    });

    [Fact]
    public Task Events_after_the_run_ended_and_before_the_next_run_are_not_emitted() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, outcome) = await RunAsync(includeUsage: false,
            new TextDelta("a"), new RunEnded(), new TextDelta("b"), new RunFailed(ChatError.Internal), new RunEnded(FinishReasons.Length),
            new AgentFault(new InvalidOperationException("late")), RunCancelled.Instance);

        Assert.Equal([Role, Content("a"), Finish(), Done], parts);
        Assert.Equal(new TurnOutcome("a", FinishReasons.Stop, new TokenUsage(PromptTokens, 1), null, Cancelled: false), outcome);
    });

    // ---- cancelled runs -------------------------------------------------------------------------

    [Fact]
    public Task Cancelled_run_closes_with_a_closing_marker_and_no_finish_error_or_done() => NothingLeftRunningAfterAsync(async () =>
    {
        var (parts, _) = await RunAsync(includeUsage: true, new TextDelta("Hel"), RunCancelled.Instance);

        Assert.Equal([Role, Content("Hel"), RunCancelledPart.Instance], parts);
    });

    [Fact]
    public Task Outcome_is_cancelled_when_the_reader_cancels() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewRun(includeUsage: false);
        await OpenAsync(stage, run);

        await stage.Reader.RequestAsync(2);
        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        await stage.Agent.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Content("Hel"), await stage.Reader.ExpectNextAsync());
        await stage.Reader.RequestAsync(1);
        await stage.Agent.SendNextAsync(RunCancelled.Instance);

        Assert.Equal(RunCancelledPart.Instance, await stage.Reader.ExpectNextAsync());
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Cancelled);
        Assert.Equal("Hel", outcome.ReplyText);
        Assert.Null(outcome.FinishReason);
        Assert.Null(outcome.Error);
        Assert.False(outcome.Succeeded);
        await StopAsync(stage);
    });

    // ---- backpressure ---------------------------------------------------------------------------

    [Fact]
    public Task Slow_reader_backpressures_the_agent() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        await OpenAsync(stage, NewRun(includeUsage: true));

        // Each ExpectNoMsg on the pulls below is a pull that must not happen: no event tells of one that does not come, so
        // each is a short, explicit "nothing happens" window.
        // The role is there at once, and the agent is not asked for anything yet.
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await stage.Reader.RequestAsync(1);
        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        // One more element wanted: the agent is pulled exactly once.
        await stage.Reader.RequestAsync(1);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await stage.Agent.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Content("Hel"), await stage.Reader.ExpectNextAsync());

        // No demand, no pull: the next delta waits at the agent.
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await stage.Reader.RequestAsync(1);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        // Usage sends nothing by itself, so the stage asks the agent for the next event at once.
        await stage.Agent.SendNextAsync(new UsageReport(new TokenUsage(3, 1)));
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await stage.Agent.SendNextAsync(new TextDelta("lo"));
        Assert.Equal(Content("lo"), await stage.Reader.ExpectNextAsync());
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        // The ending is emitted only as fast as the reader asks for it.
        await stage.Reader.RequestAsync(1);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await stage.Agent.SendNextAsync(new RunEnded());
        Assert.Equal(Finish(), await stage.Reader.ExpectNextAsync());
        await stage.Reader.RequestAsync(1);
        Assert.Equal(Usage(3, 1), await stage.Reader.ExpectNextAsync());
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await stage.Reader.RequestAsync(1);
        Assert.Equal(Done, await stage.Reader.ExpectNextAsync());

        // After done the stage waits for the next run's marker, and asks for it only when the reader asks.
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        await stage.Reader.RequestAsync(1);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await StopAsync(stage);
    });

    // ---- the outcome ----------------------------------------------------------------------------

    [Fact]
    public Task Outcome_has_the_reply_text_and_the_reported_usage() => NothingLeftRunningAfterAsync(async () =>
    {
        var (_, outcome) = await RunAsync(includeUsage: false,
            new TextDelta("Hello"), new TextDelta(", "), new UsageReport(new TokenUsage(1, 1)),
            new TextDelta("world"), new UsageReport(new TokenUsage(12, 5)), new RunEnded());

        Assert.Equal(new TurnOutcome("Hello, world", FinishReasons.Stop, new TokenUsage(12, 5), null, Cancelled: false), outcome);
        Assert.True(outcome.Succeeded);
    });

    [Fact]
    public Task Outcome_estimates_usage_when_the_agent_reports_none() => NothingLeftRunningAfterAsync(async () =>
    {
        const string reply = "Hello, world! How are you?"; // 26 characters

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta(reply), new RunEnded());

        var estimated = new TokenUsage(PromptTokens, TokenEstimator.Estimate(reply));
        Assert.Equal(7, estimated.CompletionTokens);
        Assert.Equal(estimated, outcome.Usage);
        Assert.Equal(new UsagePart(estimated), parts[^2]);
    });

    [Fact]
    public Task Outcome_of_a_failed_run_has_the_error_and_no_finish_reason() => NothingLeftRunningAfterAsync(async () =>
    {
        var crash = new InvalidOperationException("boom");

        var (_, outcome) = await RunAsync(includeUsage: false, new TextDelta("partial"), new AgentFault(crash));

        Assert.Equal("partial", outcome.ReplyText);
        Assert.Null(outcome.FinishReason);
        Assert.Equal(new ErrorPart(ChatError.Internal, crash), outcome.Error);
        Assert.False(outcome.Cancelled);
        Assert.False(outcome.Succeeded);
    });

    [Fact]
    public Task Outcome_remembers_a_capped_reply_but_the_whole_reply_streams_and_counts() => NothingLeftRunningAfterAsync(async () =>
    {
        const int max = WireOrderStage.MaxRememberedReplyChars;
        var head = new string('a', max - 1);

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta(head), new TextDelta("bcd"), new RunEnded());

        Assert.Equal(head + "b", outcome.ReplyText);
        var usage = new TokenUsage(PromptTokens, TokenEstimator.Estimate(max + 2));
        Assert.Equal(usage, outcome.Usage);
        Assert.Equal([Role, Content(head), Content("bcd"), Finish(), new UsagePart(usage), Done], parts);
    });

    // ---- run after run on one stage -------------------------------------------------------------

    [Fact]
    public Task Two_runs_in_a_row_each_get_their_own_parts_and_outcome() => NothingLeftRunningAfterAsync(async () =>
    {
        var first = NewRun(includeUsage: true);
        var second = NewRun(includeUsage: true);

        var parts = await RunPartsAsync(
            new RunStarting(first), new TextDelta("first"), new UsageReport(new TokenUsage(40, 2)), new RunEnded(FinishReasons.Length),
            new RunStarting(second), new TextDelta("second"), new RunEnded());

        Assert.Equal(
            [
                new RunOpened(first), Role, Content("first"), Finish(FinishReasons.Length), Usage(40, 2), Done,
                // The second run reports no usage: it gets its own estimate, not the first run's numbers.
                new RunOpened(second), Role, Content("second"), Finish(), Usage(PromptTokens, TokenEstimator.Estimate("second")), Done,
            ],
            parts);
        Assert.Equal(new TurnOutcome("first", FinishReasons.Length, new TokenUsage(40, 2), null, Cancelled: false),
            await first.Outcome.WaitAsync(RemainingOrDefault));
        Assert.Equal(new TurnOutcome("second", FinishReasons.Stop, new TokenUsage(PromptTokens, 2), null, Cancelled: false),
            await second.Outcome.WaitAsync(RemainingOrDefault));
    });

    [Fact]
    public Task A_failed_or_cancelled_run_leaves_nothing_behind_for_the_next_run() => NothingLeftRunningAfterAsync(async () =>
    {
        var failed = NewRun(includeUsage: false);
        var cancelled = NewRun(includeUsage: false);
        var next = NewRun(includeUsage: false);
        var crash = new InvalidOperationException("boom");

        var parts = await RunPartsAsync(
            new RunStarting(failed), new TextDelta("one"), new UsageReport(new TokenUsage(9, 9)), new AgentFault(crash),
            new RunStarting(cancelled), new TextDelta("two"), RunCancelled.Instance,
            new RunStarting(next), new TextDelta("three"), new RunEnded());

        Assert.Equal(
            [
                new RunOpened(failed), Role, Content("one"), new ErrorPart(ChatError.Internal, crash), Done,
                new RunOpened(cancelled), Role, Content("two"), RunCancelledPart.Instance,
                new RunOpened(next), Role, Content("three"), Finish(), Done,
            ],
            parts);
        var failedOutcome = await failed.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Equal("one", failedOutcome.ReplyText);
        Assert.Equal(new ErrorPart(ChatError.Internal, crash), failedOutcome.Error);
        var cancelledOutcome = await cancelled.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Equal("two", cancelledOutcome.ReplyText);
        Assert.True(cancelledOutcome.Cancelled);
        Assert.Null(cancelledOutcome.Error);
        Assert.Null(cancelledOutcome.Usage);
        Assert.Equal(new TurnOutcome("three", FinishReasons.Stop, new TokenUsage(PromptTokens, TokenEstimator.Estimate("three")), null, false),
            await next.Outcome.WaitAsync(RemainingOrDefault));
    });

    [Fact]
    public Task A_long_reply_does_not_leak_into_the_next_run() => NothingLeftRunningAfterAsync(async () =>
    {
        var longRun = NewRun(includeUsage: false);
        var shortRun = NewRun(includeUsage: false);
        var big = new string('x', 40 * 1024); // past what the stage keeps of its reply buffer between runs

        await RunPartsAsync(
            new RunStarting(longRun), new TextDelta(big), new TextDelta("!"), new RunEnded(),
            new RunStarting(shortRun), new TextDelta("ok"), new RunEnded());

        Assert.Equal(big + "!", (await longRun.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
        Assert.Equal("ok", (await shortRun.Outcome.WaitAsync(RemainingOrDefault)).ReplyText);
    });

    [Fact]
    public Task The_second_runs_role_comes_before_its_agent_is_pulled() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var first = NewRun(includeUsage: false);
        var second = NewRun(includeUsage: false);
        await OpenAsync(stage, first);
        await stage.Reader.RequestAsync(3);
        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        await stage.Agent.SendNextAsync(new RunEnded());
        Assert.Equal([Finish(), Done], await stage.Reader.ExpectNextNAsync(2).ToListAsync());
        await stage.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>(); // the pull that got that RunEnded

        await OpenAsync(stage, second);
        await stage.Reader.RequestAsync(1);

        Assert.Equal(Role, await stage.Reader.ExpectNextAsync());
        // A pull that must not happen: a short, explicit "nothing happens" window.
        await stage.Pulls.ExpectNoMsgAsync(Quiet);
        Assert.True((await first.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
        Assert.False(second.Outcome.IsCompleted);
        await StopAsync(stage);
    });
}
