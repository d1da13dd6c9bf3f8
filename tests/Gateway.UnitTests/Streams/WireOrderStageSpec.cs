using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Akka.TestKit;
using Gateway.Streams;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>Spec §8: the answer's wire order, enforced by <see cref="WireOrderStage"/> alone.</summary>
public sealed class WireOrderStageSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output)
{
    private const int PromptTokens = 7;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    private static readonly RolePart Role = RolePart.Instance;
    private static readonly DonePart Done = DonePart.Instance;

    private static ContentPart Content(string text) => new(text);

    private static FinishPart Finish(string reason = FinishReasons.Stop) => new(reason);

    private static UsagePart Usage(int prompt, int completion) => new(new TokenUsage(prompt, completion));

    /// <summary>Runs a finished list of agent events through the stage and collects every part.</summary>
    private async Task<(IReadOnlyList<ChatStreamPart> Parts, TurnOutcome Outcome)> RunAsync(bool includeUsage, Source<AgentEvent, Akka.NotUsed> agent)
    {
        var (outcome, parts) = agent
            .ViaMaterialized(new WireOrderStage(includeUsage, PromptTokens), Keep.Right)
            .ToMaterialized(Sink.Seq<ChatStreamPart>(), Keep.Both)
            .Run(Sys.Materializer());
        return (await parts.WaitAsync(RemainingOrDefault), await outcome.WaitAsync(RemainingOrDefault));
    }

    private Task<(IReadOnlyList<ChatStreamPart> Parts, TurnOutcome Outcome)> RunAsync(bool includeUsage, params AgentEvent[] events) =>
        RunAsync(includeUsage, Source.From(events));

    /// <summary>A controllable agent, the stage's pulls on it, and a reader that requests explicitly.</summary>
    private sealed record Probed(
        TestPublisher.Probe<AgentEvent> Agent, TestProbe Pulls, Task<TurnOutcome> Outcome, TestSubscriber.Probe<ChatStreamPart> Reader);

    private Probed Materialize(bool includeUsage = false)
    {
        var pulls = CreateTestProbe();
        var ((agent, outcome), reader) = this.SourceProbe<AgentEvent>()
            .Via(new ReportPulls<AgentEvent>(pulls.Ref))
            .ViaMaterialized(new WireOrderStage(includeUsage, PromptTokens), Keep.Both)
            .ToMaterialized(this.SinkProbe<ChatStreamPart>(), Keep.Both)
            .Run(Sys.Materializer());
        return new Probed(agent, pulls, outcome, reader);
    }

    // ---- order of a normal run ------------------------------------------------------------------

    [Fact]
    public async Task Normal_run_is_role_then_content_then_one_finish_then_done()
    {
        var (parts, _) = await RunAsync(includeUsage: false,
            new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(3, 2)), new RunEnded());

        Assert.Equal([Role, Content("Hel"), Content("lo"), Finish(), Done], parts);
    }

    [Fact]
    public async Task With_include_usage_a_usage_part_comes_right_before_done()
    {
        var (parts, _) = await RunAsync(includeUsage: true,
            new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(3, 2)), new RunEnded());

        Assert.Equal([Role, Content("Hel"), Content("lo"), Finish(), Usage(3, 2), Done], parts);
    }

    [Fact]
    public async Task Agent_completing_without_RunEnded_still_finishes_with_stop()
    {
        var (parts, _) = await RunAsync(includeUsage: false, new TextDelta("Hi"));

        Assert.Equal([Role, Content("Hi"), Finish(), Done], parts);
    }

    [Fact]
    public async Task Empty_text_deltas_send_nothing()
    {
        var (parts, _) = await RunAsync(includeUsage: false, new TextDelta(""), new TextDelta("a"), new TextDelta(""), new RunEnded());

        Assert.Equal([Role, Content("a"), Finish(), Done], parts);
    }

    [Fact]
    public async Task Role_part_is_sent_before_the_agent_is_pulled()
    {
        var run = Materialize();

        await run.Reader.RequestAsync(1);

        Assert.Equal(Role, await run.Reader.ExpectNextAsync());
        await run.Pulls.ExpectNoMsgAsync(Quiet);
    }

    // ---- empty, failed and ended runs -----------------------------------------------------------

    [Fact]
    public async Task Empty_run_is_role_then_finish_stop_then_done()
    {
        var (parts, _) = await RunAsync(includeUsage: false, Source.Empty<AgentEvent>());

        Assert.Equal([Role, Finish(), Done], parts);
    }

    [Fact]
    public async Task Empty_run_with_include_usage_reports_the_prompt_estimate_and_no_completion_tokens()
    {
        var (parts, _) = await RunAsync(includeUsage: true, Source.Empty<AgentEvent>());

        Assert.Equal([Role, Finish(), Usage(PromptTokens, 0), Done], parts);
    }

    [Fact]
    public async Task Agent_failing_midway_ends_with_an_internal_error_then_done_and_no_finish()
    {
        var run = Materialize(includeUsage: true);
        var crash = new InvalidOperationException("model connection reset");

        await run.Reader.RequestAsync(10);
        await run.Agent.SendNextAsync(new TextDelta("Hel"));
        await run.Agent.SendErrorAsync(crash);

        Assert.Equal(Role, await run.Reader.ExpectNextAsync());
        Assert.Equal(Content("Hel"), await run.Reader.ExpectNextAsync());
        var error = Assert.IsType<ErrorPart>(await run.Reader.ExpectNextAsync());
        Assert.Equal(Done, await run.Reader.ExpectNextAsync());
        await run.Reader.ExpectCompleteAsync();

        Assert.Equal(ChatError.Internal, error.Error);
        Assert.Equal(new ChatError("internal error", "api_error"), error.Error);
        Assert.Same(crash, error.Cause);
    }

    [Fact]
    public async Task Agent_failing_with_an_AgentRunException_shows_that_exceptions_own_error()
    {
        var timeout = new ChatError("upstream model timed out", "api_error", "timeout", 504);
        var crash = new AgentRunException(timeout);

        var (parts, outcome) = await RunAsync(includeUsage: true,
            Source.From<AgentEvent>([new TextDelta("Hel")]).Concat(Source.Failed<AgentEvent>(crash)));

        Assert.Equal([Role, Content("Hel"), new ErrorPart(timeout, crash), Done], parts);
        Assert.Same(crash, outcome.Error!.Cause);
    }

    [Fact]
    public async Task Agent_failing_before_its_first_event_still_gets_the_role_part_first()
    {
        var crash = new InvalidOperationException("no route to model");

        var (parts, _) = await RunAsync(includeUsage: true, Source.Failed<AgentEvent>(crash));

        Assert.Equal([Role, new ErrorPart(ChatError.Internal, crash), Done], parts);
    }

    [Fact]
    public async Task RunFailed_event_ends_with_its_error_then_done()
    {
        var refused = new ChatError("Upstream model rejected the key.", "authentication_error", null, 502);

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta("Hel"), new RunFailed(refused));

        Assert.Equal([Role, Content("Hel"), new ErrorPart(refused, null), Done], parts);
        Assert.Equal(new ErrorPart(refused, null), outcome.Error);
    }

    [Fact]
    public async Task RunEnded_with_tool_calls_finishes_with_that_reason()
    {
        var (parts, outcome) = await RunAsync(includeUsage: false, new RunEnded(FinishReasons.ToolCalls));

        Assert.Equal([Role, Finish(FinishReasons.ToolCalls), Done], parts);
        Assert.Equal(FinishReasons.ToolCalls, outcome.FinishReason);
    }

    [Fact]
    public async Task Events_after_RunEnded_are_not_emitted()
    {
        var (parts, _) = await RunAsync(includeUsage: false,
            new TextDelta("a"), new RunEnded(), new TextDelta("b"), new RunFailed(ChatError.Internal), new RunEnded(FinishReasons.Length));

        Assert.Equal([Role, Content("a"), Finish(), Done], parts);
    }

    [Fact]
    public async Task Agent_is_cancelled_once_the_run_has_ended()
    {
        var run = Materialize();

        await run.Reader.RequestAsync(10);
        await run.Agent.SendNextAsync(new RunEnded());

        await run.Agent.ExpectCancellationAsync();
        Assert.Equal([Role, Finish(), Done], await run.Reader.ExpectNextNAsync(3).ToListAsync());
        await run.Reader.ExpectCompleteAsync();
    }

    // ---- backpressure ---------------------------------------------------------------------------

    [Fact]
    public async Task Slow_reader_backpressures_the_agent()
    {
        var run = Materialize(includeUsage: true);

        // The role is there at once, and the agent is not asked for anything yet.
        await run.Reader.RequestAsync(1);
        Assert.Equal(Role, await run.Reader.ExpectNextAsync());
        await run.Pulls.ExpectNoMsgAsync(Quiet);

        // One more element wanted: the agent is pulled exactly once.
        await run.Reader.RequestAsync(1);
        await run.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await run.Pulls.ExpectNoMsgAsync(Quiet);
        await run.Agent.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Content("Hel"), await run.Reader.ExpectNextAsync());

        // No demand, no pull: the next delta waits at the agent.
        await run.Pulls.ExpectNoMsgAsync(Quiet);
        await run.Reader.RequestAsync(1);
        await run.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await run.Pulls.ExpectNoMsgAsync(Quiet);

        // Usage sends nothing by itself, so the stage asks the agent for the next event at once.
        await run.Agent.SendNextAsync(new UsageReport(new TokenUsage(3, 1)));
        await run.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await run.Agent.SendNextAsync(new TextDelta("lo"));
        Assert.Equal(Content("lo"), await run.Reader.ExpectNextAsync());
        await run.Pulls.ExpectNoMsgAsync(Quiet);

        // The ending is emitted only as fast as the reader asks for it.
        await run.Reader.RequestAsync(1);
        await run.Pulls.ExpectMsgAsync<ReportPulls<AgentEvent>.Pulled>();
        await run.Agent.SendNextAsync(new RunEnded());
        Assert.Equal(Finish(), await run.Reader.ExpectNextAsync());
        await run.Reader.ExpectNoMsgAsync(Quiet);
        await run.Reader.RequestAsync(1);
        Assert.Equal(Usage(3, 1), await run.Reader.ExpectNextAsync());
        await run.Reader.RequestAsync(1);
        Assert.Equal(Done, await run.Reader.ExpectNextAsync());
        await run.Reader.ExpectCompleteAsync();
    }

    // ---- the materialized outcome ---------------------------------------------------------------

    [Fact]
    public async Task Outcome_has_the_reply_text_and_the_reported_usage()
    {
        var (_, outcome) = await RunAsync(includeUsage: false,
            new TextDelta("Hello"), new TextDelta(", "), new UsageReport(new TokenUsage(1, 1)),
            new TextDelta("world"), new UsageReport(new TokenUsage(12, 5)), new RunEnded());

        Assert.Equal(new TurnOutcome("Hello, world", FinishReasons.Stop, new TokenUsage(12, 5), null, Cancelled: false), outcome);
        Assert.True(outcome.Succeeded);
    }

    [Fact]
    public async Task Outcome_estimates_usage_when_the_agent_reports_none()
    {
        const string reply = "Hello, world! How are you?"; // 26 characters

        var (parts, outcome) = await RunAsync(includeUsage: true, new TextDelta(reply), new RunEnded());

        var estimated = new TokenUsage(PromptTokens, TokenEstimator.Estimate(reply));
        Assert.Equal(7, estimated.CompletionTokens);
        Assert.Equal(estimated, outcome.Usage);
        Assert.Equal(new UsagePart(estimated), parts[^2]);
    }

    [Fact]
    public async Task Outcome_of_a_failed_run_has_the_error_and_no_finish_reason()
    {
        var crash = new InvalidOperationException("boom");

        var (_, outcome) = await RunAsync(includeUsage: false,
            Source.From<AgentEvent>([new TextDelta("partial")]).Concat(Source.Failed<AgentEvent>(crash)));

        Assert.Equal("partial", outcome.ReplyText);
        Assert.Null(outcome.FinishReason);
        Assert.Equal(new ErrorPart(ChatError.Internal, crash), outcome.Error);
        Assert.False(outcome.Cancelled);
        Assert.False(outcome.Succeeded);
    }

    [Fact]
    public async Task Outcome_is_cancelled_when_the_reader_cancels()
    {
        var run = Materialize();

        await run.Reader.RequestAsync(2);
        Assert.Equal(Role, await run.Reader.ExpectNextAsync());
        await run.Agent.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Content("Hel"), await run.Reader.ExpectNextAsync());
        await run.Reader.CancelAsync();

        await run.Agent.ExpectCancellationAsync();
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Cancelled);
        Assert.Equal("Hel", outcome.ReplyText);
        Assert.Null(outcome.FinishReason);
        Assert.False(outcome.Succeeded);
    }
}
