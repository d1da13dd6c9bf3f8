using Akka.Streams;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// A run whose session must record its turn (<see cref="IRunCommit"/>): its answer ends only once the commit is
/// over (streamed: the finish and [DONE]; folded: the completion), a failed commit ends the answer with its error
/// instead, and a run that failed or was cancelled is never committed.
/// </summary>
public sealed class RunCommitSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_7", 1767225600, "openclaw");
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);
    private static readonly ChatError StoreDown = new("store down", "api_error", "session_store_unavailable", 503);

    private ActorMaterializer? _materializer;

    private ActorMaterializer Materializer => _materializer ??= Sys.Materializer();

    private RunLanes NewLanes() => new(Materializer, maxIdleLanes: 0, lanesPerGraph: 1, burstLimit: 16);

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private Task NothingLeftRunningAfterAsync(Func<Task> spec) => this.AssertNoStageLeftRunningAsync(spec, Materializer);

    /// <summary>A commit the spec completes when it wants, and what it was asked to commit.</summary>
    private sealed class HeldCommit : IRunCommit
    {
        private readonly TaskCompletionSource<ChatError?> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<TurnOutcome> _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<TurnOutcome> Asked => _asked.Task;

        public ValueTask<ChatError?> CommitAsync(TurnOutcome outcome)
        {
            _asked.TrySetResult(outcome);
            return new(_done.Task);
        }

        public void Complete(ChatError? failure) => _done.TrySetResult(failure);
    }

    [Fact]
    public Task A_streamed_answer_ends_only_once_its_turn_is_committed() => NothingLeftRunningAfterAsync(async () =>
    {
        var commit = new HeldCommit();
        var run = NewLanes().StartStreaming(TestAgents.Saying(new TextDelta("Hello"), new RunEnded()), Header, includeUsage: false,
            promptTokenEstimate: 1, commit: commit);

        Assert.Equal(Event(RolePart.Instance), await run.ReadOneDataAsync(RemainingOrDefault));
        Assert.Equal(Event(new ContentPart("Hello")), await run.ReadOneDataAsync(RemainingOrDefault));
        Assert.Equal("Hello", (await commit.Asked.WaitAsync(RemainingOrDefault)).ReplyText);
        var end = run.ReadOneDataAsync(RemainingOrDefault);
        await Task.Delay(Quiet);
        Assert.False(end.IsCompleted, "the answer ended before its turn was committed");

        commit.Complete(null);

        Assert.Equal(Event(new FinishPart(FinishReasons.Stop)), await end);
        Assert.Equal(["[DONE]"], await run.ReadAllDataAsync(RemainingOrDefault));
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
    });

    [Fact]
    public Task A_failed_commit_ends_the_stream_with_its_error_and_the_turn_is_not_a_success() => NothingLeftRunningAfterAsync(async () =>
    {
        var commit = new HeldCommit();
        var run = NewLanes().StartStreaming(TestAgents.Saying(new TextDelta("Hello"), new RunEnded()), Header, includeUsage: true,
            promptTokenEstimate: 1, commit: commit);
        // The agent is read only as fast as its reader reads.
        var reading = run.ReadAllDataAsync(RemainingOrDefault);
        await commit.Asked.WaitAsync(RemainingOrDefault);

        commit.Complete(StoreDown);

        var events = await reading;
        Assert.Equal([Event(RolePart.Instance), Event(new ContentPart("Hello")), Event(new ErrorPart(StoreDown, null)), "[DONE]"], events);
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.False(outcome.Succeeded);
        Assert.Equal(StoreDown, outcome.Error!.Error);
    });

    [Fact]
    public Task A_folded_answer_comes_only_once_its_turn_is_committed_and_carries_a_failed_commit_as_its_error() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var lanes = NewLanes();
            var committed = new HeldCommit();
            var kept = lanes.StartCompletion(TestAgents.Saying(new TextDelta("Kept"), new RunEnded()), Header, promptTokenEstimate: 1,
                commit: committed);
            await committed.Asked.WaitAsync(RemainingOrDefault);
            await Task.Delay(Quiet);
            Assert.False(kept.Answer.IsCompleted, "the completion came before its turn was committed");
            committed.Complete(null);
            Assert.Equal("Kept", Assert.Single((await kept.Answer.WaitAsync(RemainingOrDefault)).Completion!.Choices).Message.Content);

            var refused = new HeldCommit();
            var lost = lanes.StartCompletion(TestAgents.Saying(new TextDelta("Lost"), new RunEnded()), Header, promptTokenEstimate: 1,
                commit: refused);
            await refused.Asked.WaitAsync(RemainingOrDefault);
            refused.Complete(StoreDown);
            var answer = await lost.Answer.WaitAsync(RemainingOrDefault);
            Assert.Null(answer.Completion);
            Assert.Equal(StoreDown, answer.Error!.Error);
        });

    [Fact]
    public Task A_run_that_fails_is_never_committed() => NothingLeftRunningAfterAsync(async () =>
    {
        var commit = new HeldCommit();
        var run = NewLanes().StartStreaming(TestAgents.Saying(new TextDelta("half"), new RunFailed(new ChatError("upstream", "api_error"))),
            Header, includeUsage: false, promptTokenEstimate: 1, commit: commit);

        var events = await run.ReadAllDataAsync(RemainingOrDefault);

        Assert.Equal("[DONE]", events[^1]);
        Assert.False(commit.Asked.IsCompleted);
    });

    [Fact]
    public Task A_reader_who_leaves_while_the_commit_waits_frees_the_lane_once_it_is_over() => NothingLeftRunningAfterAsync(async () =>
    {
        var lanes = NewLanes();
        var commit = new HeldCommit();
        var run = lanes.StartStreaming(TestAgents.Saying(new TextDelta("Hello"), new RunEnded()), Header, includeUsage: false,
            promptTokenEstimate: 1, commit: commit);
        Assert.Equal(Event(RolePart.Instance), await run.ReadOneDataAsync(RemainingOrDefault));
        await commit.Asked.WaitAsync(RemainingOrDefault);

        run.Cancel();
        commit.Complete(null);

        await run.Outcome.WaitAsync(RemainingOrDefault);
        await AwaitConditionAsync(() => Task.FromResult(lanes.LiveLanes == 0), RemainingOrDefault, "the lane was never freed");
    });
}
