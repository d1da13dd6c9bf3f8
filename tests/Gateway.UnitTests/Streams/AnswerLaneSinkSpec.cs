using Akka.Actor;
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
/// The answer end of a lane, alone: each run's parts go to that run's end (its response), it asks for the next part only
/// when that end has room, it flushes per burst (at the latest every <c>burstLimit</c> parts), and a run's last part (done,
/// or the closing marker of a cancelled run) frees the lane, which it tells its owner. No lane listens to the runs here:
/// a spec stops a run itself and passes the stop on as the lane would (<see cref="AnswerLaneSink.Control.Interrupt"/>).
/// Every spec ends with the sink stopped, and fails if a stage is left running.
/// </summary>
public sealed class AnswerLaneSinkSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_5", 1767225600, "openclaw");
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    private static readonly RolePart Role = RolePart.Instance;
    private static readonly DonePart Done = DonePart.Instance;
    private static readonly FinishPart Finish = new(FinishReasons.Stop);

    private ActorMaterializer? _materializer;

    private ActorMaterializer Materializer => _materializer ??= Sys.Materializer();

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private static IAsyncEnumerable<AgentEvent> UnreadAgent() => TestAgents.Unread("The answer end must not read the agent.");

    /// <summary>A run whose reader has not handed over its response.</summary>
    private static StreamingRun NewUnreadRun() => new(UnreadAgent(), Header, includeUsage: false, promptTokenEstimate: 1, onText: null);

    /// <summary>A run whose reader hands over its response at once; a slow one takes nothing until the spec reads, and a flush waits for it.</summary>
    private static StreamingRun NewRun(bool slowReader = false)
    {
        var run = NewUnreadRun();
        if (slowReader) AnswerReader.Slow(run);
        else AnswerReader.Of(run);
        return run;
    }

    private Task<List<string>> ReadAllAsync(StreamingRun run) => run.ReadAllDataAsync(RemainingOrDefault);

    private Task<string> ReadOneAsync(StreamingRun run) => run.ReadOneDataAsync(RemainingOrDefault);

    private Task NothingLeftRunningAfterAsync(Func<Task> spec) => this.AssertNoStageLeftRunningAsync(spec, Materializer);

    /// <summary>What the sink tells its owner, as messages to a probe.</summary>
    private sealed record RunDone(AnswerRun Run);

    private sealed record LaneStopped;

    private sealed class OwnerProbe(IActorRef probe) : AnswerLaneSink.IOwner
    {
        public void OnRunDone(AnswerRun run) => probe.Tell(new RunDone(run));

        public void OnLaneStopped() => probe.Tell(new LaneStopped());
    }

    /// <summary>The sink on a controllable input, the sink's pulls on it, its control, and what it tells its owner.</summary>
    private sealed record Probed(TestPublisher.Probe<ChatStreamPart> Parts, TestProbe Pulls, AnswerLaneSink.Control Control, TestProbe Owner);

    private Probed Materialize(int burstLimit = 1)
    {
        var pulls = CreateTestProbe();
        var owner = CreateTestProbe();
        var (parts, control) = this.SourceProbe<ChatStreamPart>()
            .Via(new ReportPulls<ChatStreamPart>(pulls.Ref))
            .ToMaterialized(new AnswerLaneSink(burstLimit), Keep.Both)
            .Run(Materializer);
        // Before the first part: as the pool sets it once the lane is made.
        control.Owner = new OwnerProbe(owner.Ref);
        return new Probed(parts, pulls, control, owner);
    }

    private static async Task SendAsync(Probed stage, params ChatStreamPart[] parts)
    {
        foreach (var part in parts) await stage.Parts.SendNextAsync(part);
    }

    /// <summary>Ends the sink's input: the sink stops and tells its owner (after everything it told it before, which a spec has expected).</summary>
    private static async Task StopAsync(Probed stage)
    {
        await stage.Parts.SendCompleteAsync();
        await stage.Owner.ExpectMsgAsync<LaneStopped>();
        Assert.True(stage.Control.Stopped);
    }

    [Fact]
    public Task Each_runs_parts_go_to_its_own_end_and_parts_outside_a_run_are_dropped() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var first = NewRun();
        var second = NewRun();

        await SendAsync(stage,
            new ContentPart("stray"),
            new RunOpened(first), Role, new ContentPart("one"), Finish, Done,
            new ContentPart("between runs"),
            new RunOpened(second), Role, new ContentPart("two"), Finish, Done);

        Assert.Equal(new RunDone(first), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal(new RunDone(second), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal([Event(Role), Event(new ContentPart("one")), Event(Finish), "[DONE]"], await ReadAllAsync(first));
        Assert.Equal([Event(Role), Event(new ContentPart("two")), Event(Finish), "[DONE]"], await ReadAllAsync(second));
        await StopAsync(stage);
    });

    [Fact]
    public Task A_closing_marker_ends_its_run_without_a_wire_event_and_the_lane_goes_on() => NothingLeftRunningAfterAsync(async () =>
    {
        // The agent end cancelled the run (the reader left) before the answer end heard of it.
        var stage = Materialize();
        var cancelled = NewRun();
        var next = NewRun();

        await SendAsync(stage,
            new RunOpened(cancelled), Role, new ContentPart("Hel"), RunCancelledPart.Instance,
            new RunOpened(next), Role, Done);

        Assert.Equal(new RunDone(cancelled), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal(new RunDone(next), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal([Event(Role), Event(new ContentPart("Hel"))], await ReadAllAsync(cancelled));
        Assert.Equal([Event(Role), "[DONE]"], await ReadAllAsync(next));
        await StopAsync(stage);
    });

    [Fact]
    public Task It_asks_for_the_next_part_only_when_the_runs_response_has_room() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewRun(slowReader: true);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        await stage.Parts.SendNextAsync(new RunOpened(run));
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        await stage.Parts.SendNextAsync(Role);
        // Asked for as the role was written, before its flush.
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        await AwaitConditionAsync(() => Task.FromResult(AnswerReader.Of(run).WaitsForReader), RemainingOrDefault,
            "expected the role's flush to wait for the reader");

        // The flush waits for the reader: this part waits in the sink, and nothing more is asked for. (A pull that must not
        // come has no event to wait for: this is a short, explicit "nothing happens" window.)
        await stage.Parts.SendNextAsync(new ContentPart("a"));
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        Assert.Equal(Event(Role), await ReadOneAsync(run));
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        Assert.Equal(Event(new ContentPart("a")), await ReadOneAsync(run));

        // A lane that stops with a run on it hands its response back with a failure, rather than leave the reader waiting.
        await StopAsync(stage);
        await Assert.ThrowsAsync<InvalidOperationException>(() => ReadAllAsync(run));
    });

    [Fact]
    public Task Cancel_while_waiting_for_room_drops_the_rest_of_the_run_and_frees_the_lane() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewRun(slowReader: true);
        var next = NewRun();
        await SendAsync(stage, new RunOpened(run), Role, new ContentPart("a"));
        await stage.Pulls.ReceiveNAsync(3, RemainingOrDefault).ToListAsync();
        await AwaitConditionAsync(() => Task.FromResult(AnswerReader.Of(run).WaitsForReader), RemainingOrDefault,
            "expected the role's flush to wait for the reader");

        run.Cancel();
        stage.Control.Interrupt(run);

        await SendAsync(stage, new ContentPart("b"), RunCancelledPart.Instance, new RunOpened(next), Role, Done);
        Assert.Equal(new RunDone(run), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal(new RunDone(next), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal([Event(Role), "[DONE]"], await ReadAllAsync(next));
        // The reader who left finds what was written before, then the end; nothing after it left.
        Assert.Equal([Event(Role)], await ReadAllAsync(run));
        await StopAsync(stage);
    });

    [Fact]
    public Task A_run_whose_reader_left_before_it_opened_here_is_dropped_though_no_response_was_handed_over() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var stage = Materialize();
            var left = NewUnreadRun();
            var next = NewRun();
            await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();

            // The reader left as its run started: the interruption reaches this end before the run's first part (and finds no run).
            left.Cancel();
            stage.Control.Interrupt(left);
            await SendAsync(stage, new RunOpened(left), Role, RunCancelledPart.Instance, new RunOpened(next), Role, Done);

            Assert.Equal(new RunDone(left), await stage.Owner.ExpectMsgAsync<RunDone>());
            Assert.Equal(new RunDone(next), await stage.Owner.ExpectMsgAsync<RunDone>());
            Assert.Equal([Event(Role), "[DONE]"], await ReadAllAsync(next));
            // A response handed over now is handed back at once, and nothing was written into it.
            var writer = new RecordingWriter();
            Assert.True(left.WriteToAsync(writer).IsCompletedSuccessfully);
            Assert.Empty(writer.Log);
            await StopAsync(stage);
        });

    [Fact]
    public Task An_aborted_run_keeps_its_parts_its_error_comes_down_the_lane() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewRun();
        var cause = new InvalidOperationException("timed out");
        var error = new ErrorPart(ChatError.Internal, cause);
        await SendAsync(stage, new RunOpened(run), Role);

        // What the lane passes on when a run is aborted: the answer end drops nothing, the agent end ends the run in-band.
        run.Abort(cause);
        stage.Control.Interrupt(run);
        await SendAsync(stage, error, Done);

        Assert.Equal(new RunDone(run), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal([Event(Role), Event(error), "[DONE]"], await ReadAllAsync(run));
        await StopAsync(stage);
    });

    [Fact]
    public Task A_long_burst_is_flushed_every_burstLimit_parts() => NothingLeftRunningAfterAsync(async () =>
    {
        var run = NewUnreadRun();
        var writer = new RecordingWriter();
        var handedBack = run.WriteToAsync(writer).AsTask();
        ChatStreamPart[] deltas = [.. Enumerable.Range(0, 10).Select(i => new ContentPart($"{i}"))];

        // One burst: every part is at hand at once (one source fused with the sink), so only the limit splits it.
        Source.From<ChatStreamPart>([new RunOpened(run), Role, .. deltas, Finish, Done])
            .RunWith(new AnswerLaneSink(burstLimit: 4), Materializer);
        await handedBack.WaitAsync(RemainingOrDefault);

        // After the 4th, 8th and 12th part; the done part needs none (the writer's owner flushes the end).
        Assert.Equal(
            [
                Role, deltas[0], deltas[1], deltas[2], RecordingWriter.Flush,
                deltas[3], deltas[4], deltas[5], deltas[6], RecordingWriter.Flush,
                deltas[7], deltas[8], deltas[9], Finish, RecordingWriter.Flush,
                Done,
            ],
            writer.Log);
    });

    [Fact]
    public Task A_burst_shorter_than_the_limit_is_flushed_when_it_ends() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize(burstLimit: 64);
        var run = NewUnreadRun();
        var writer = new RecordingWriter();
        _ = run.WriteToAsync(writer);

        await SendAsync(stage, new RunOpened(run), Role);
        await AwaitAssertAsync(() => Assert.Equal([Role, RecordingWriter.Flush], writer.Log));
        await SendAsync(stage, new ContentPart("a"));
        await AwaitAssertAsync(() => Assert.Equal([Role, RecordingWriter.Flush, new ContentPart("a"), RecordingWriter.Flush], writer.Log));
        await StopAsync(stage);
    });

    [Fact]
    public Task A_reader_gone_at_a_flush_cancels_its_run_and_the_rest_of_it_is_dropped() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewUnreadRun();
        var next = NewRun();
        var writer = new RecordingWriter { ReaderThere = false };
        var handedBack = run.WriteToAsync(writer).AsTask();

        await SendAsync(stage, new RunOpened(run), Role);
        // The run is cancelled (its token is what the lane passes on to the agent end) and its response handed back.
        await handedBack.WaitAsync(RemainingOrDefault);
        Assert.True(run.Cancelled);
        Assert.True(run.Stopping.IsCancellationRequested);
        await SendAsync(stage, new ContentPart("a"), RunCancelledPart.Instance, new RunOpened(next), Role, Done);

        Assert.Equal(new RunDone(run), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal(new RunDone(next), await stage.Owner.ExpectMsgAsync<RunDone>());
        Assert.Equal([Role, RecordingWriter.Flush], writer.Log);
        Assert.Equal([Event(Role), "[DONE]"], await ReadAllAsync(next));
        await StopAsync(stage);
    });

    [Fact]
    public Task A_reader_gone_at_a_write_cancels_its_run_and_the_rest_of_it_is_dropped() => NothingLeftRunningAfterAsync(async () =>
    {
        var stage = Materialize();
        var run = NewUnreadRun();
        var writer = new RecordingWriter { TakesWrites = false };
        var handedBack = run.WriteToAsync(writer).AsTask();

        await SendAsync(stage, new RunOpened(run), Role, new ContentPart("a"), RunCancelledPart.Instance);

        Assert.Equal(new RunDone(run), await stage.Owner.ExpectMsgAsync<RunDone>());
        await handedBack.WaitAsync(RemainingOrDefault);
        Assert.True(run.Cancelled);
        // Tried once; nothing more was written, nor flushed.
        Assert.Equal([Role], writer.Log);
        await StopAsync(stage);
    });

    [Fact]
    public Task A_lane_that_stops_while_its_run_waits_for_the_reader_hands_the_response_back_with_the_failure() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var stage = Materialize();
            var run = NewUnreadRun();
            var writer = new RecordingWriter { FlushesWait = true };
            var handedBack = run.WriteToAsync(writer).AsTask();
            await SendAsync(stage, new RunOpened(run), Role);
            await AwaitConditionAsync(() => Task.FromResult(writer.FlushWaiting), RemainingOrDefault);

            await StopAsync(stage);

            // The flush was cut short (a lane that stops does not wait for the reader), and the response comes back failed.
            Assert.False(writer.FlushWaiting);
            await Assert.ThrowsAsync<InvalidOperationException>(() => handedBack.WaitAsync(RemainingOrDefault));
        });
}
