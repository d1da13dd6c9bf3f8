using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// The agent end of a lane, alone: it brackets every run with <see cref="RunStarting"/> and exactly one terminal
/// event, whatever the reader's demand was when the run started or ended, and reads the agent one event per pull.
/// No lane listens to the runs here: a spec stops a run itself (<see cref="AnswerRun.Cancel"/> or <see cref="AnswerRun.Abort"/>)
/// and passes the stop on as the lane would (<see cref="AgentLaneSource.Control.Interrupt"/>).
/// Every spec ends with the agent end shut down, and fails if a stage is left running.
/// </summary>
public sealed class AgentLaneSourceSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_9", 1767225600, "openclaw");

    private ActorMaterializer? _materializer;

    private ActorMaterializer Materializer => _materializer ??= Sys.Materializer();

    private (AgentLaneSource.Control Control, TestSubscriber.Probe<AgentEvent> Reader) Materialize() =>
        Source.FromGraph(new AgentLaneSource())
            .ToMaterialized(this.SinkProbe<AgentEvent>(), Keep.Both)
            .Run(Materializer);

    private static CompletionRun NewRun(IAsyncEnumerable<AgentEvent> agent) => new(agent, Header, 1, null);

    private Task NothingLeftRunningAfterAsync(Func<Task> spec) => this.AssertNoStageLeftRunningAsync(spec, Materializer);

    /// <summary>
    /// Shuts the agent end down and waits for the reader to see it complete. The shutdown is handled after every signal
    /// sent before it, so once the reader sees the end, whatever the stage did with them is done: a spec may then count
    /// what the agent was asked for. (An agent end that had pushed without a pull would have failed instead.)
    /// </summary>
    private static async Task ShutDownAsync(AgentLaneSource.Control control, TestSubscriber.Probe<AgentEvent> reader)
    {
        control.Shutdown();
        await reader.ExpectCompleteAsync();
    }

    /// <summary>
    /// Starts a run that says nothing and expects its start marker as the reader's very next event: nothing of the runs
    /// before (a second end, an event after the end) came in between. The reader must have demand for one more.
    /// </summary>
    private static async Task ExpectNextRunStartsNextAsync(AgentLaneSource.Control control, TestSubscriber.Probe<AgentEvent> reader)
    {
        var next = NewRun(new ScriptedAgent().Events);
        control.Start(next);
        Assert.Equal(new RunStarting(next), await reader.ExpectNextAsync());
    }

    [Fact]
    public Task A_run_is_its_start_marker_its_events_then_one_end() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("a"), new TextDelta("b"));
        agent.End();
        var run = NewRun(agent.Events);

        control.Start(run);
        await reader.RequestAsync(10);

        Assert.Equal(new RunStarting(run), await reader.ExpectNextAsync());
        Assert.Equal(new TextDelta("a"), await reader.ExpectNextAsync());
        Assert.Equal(new TextDelta("b"), await reader.ExpectNextAsync());
        Assert.IsType<RunEnded>(await reader.ExpectNextAsync());
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task The_start_marker_goes_out_without_asking_the_agent() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("a"), new TextDelta("b"));

        control.Start(NewRun(agent.Events));
        await reader.RequestAsync(1);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        await ShutDownAsync(control, reader);

        // The agent had events ready, yet the one pull went to the marker.
        Assert.Equal(0, agent.Produced);
    });

    [Fact]
    public Task The_agent_is_read_one_event_per_pull() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("a"), new TextDelta("b"), new TextDelta("c"), new TextDelta("d"));

        control.Start(NewRun(agent.Events));
        await reader.RequestAsync(1);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        await reader.RequestAsync(2);
        Assert.Equal(new TextDelta("a"), await reader.ExpectNextAsync());
        Assert.Equal(new TextDelta("b"), await reader.ExpectNextAsync());
        await ShutDownAsync(control, reader);

        // Four events ready, two pulls after the marker: the agent was asked twice (it counts what it hands out).
        Assert.Equal(2, agent.Produced);
    });

    [Fact]
    public Task The_agents_own_end_event_ends_the_run_and_the_agent_is_disposed() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new RunFailed(ChatError.Internal), new TextDelta("never read"));

        control.Start(NewRun(agent.Events));
        await reader.RequestAsync(10);

        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        Assert.Equal(new RunFailed(ChatError.Internal), await reader.ExpectNextAsync());
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.Equal(1, agent.Produced);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task Cancel_stops_a_busy_agent_and_ends_the_run_with_RunCancelled() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var run = NewRun(agent.Events);
        control.Start(run);
        await reader.RequestAsync(3);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());

        run.Cancel();
        control.Interrupt(run);

        Assert.Same(RunCancelled.Instance, await reader.ExpectNextAsync());
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task Abort_of_an_agent_busy_in_a_step_that_ignores_the_token_ends_the_run_at_once() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var stepEnds = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        agent.Say(new ScriptedAgent.Stall(stepEnds.Task), new TextDelta("after the step"));
        var run = NewRun(agent.Events);
        var cause = new InvalidOperationException("timed out");
        control.Start(run);
        await reader.RequestAsync(3);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        await agent.Stalled.WaitAsync(RemainingOrDefault);

        run.Abort(cause);
        control.Interrupt(run);

        // The step goes on (the token fired, the agent does not listen), yet the run ends now.
        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        Assert.False(agent.Stopped.IsCompleted);
        await ExpectNextRunStartsNextAsync(control, reader);

        // Once the step is over, the stale enumerator is disposed, and its event goes nowhere (the reader has room for it:
        // had it gone out, the reader would see it before the end below).
        await reader.RequestAsync(1);
        stepEnds.SetResult();
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.Equal(1, agent.Produced);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task A_step_that_fails_because_its_run_was_stopped_ends_the_run_as_the_stop_says() => NothingLeftRunningAfterAsync(async () =>
    {
        // The run's token stops the agent's step, which fails; the lane's interruption may come only after that failure.
        var (control, reader) = Materialize();
        var cancelledAgent = new ScriptedAgent();
        var cancelled = NewRun(cancelledAgent.Events);
        control.Start(cancelled);
        await reader.RequestAsync(10);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());

        cancelled.Cancel();

        Assert.Same(RunCancelled.Instance, await reader.ExpectNextAsync());
        await cancelledAgent.Stopped.WaitAsync(RemainingOrDefault);

        var abortedAgent = new ScriptedAgent();
        var aborted = NewRun(abortedAgent.Events);
        var cause = new InvalidOperationException("timed out");
        control.Start(aborted);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());

        aborted.Abort(cause);

        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
        // The late interruptions find no run of theirs on the lane.
        control.Interrupt(cancelled);
        control.Interrupt(aborted);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task Interrupts_of_a_run_that_is_not_on_the_lane_are_ignored() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var first = new ScriptedAgent();
        first.Say(new RunEnded());
        var firstRun = NewRun(first.Events);
        control.Start(firstRun);
        await reader.RequestAsync(2);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        Assert.IsType<RunEnded>(await reader.ExpectNextAsync());

        var second = new ScriptedAgent();
        var secondRun = NewRun(second.Events);
        control.Start(secondRun);
        firstRun.Abort(new InvalidOperationException("late"));
        control.Interrupt(firstRun);
        firstRun.Cancel();
        control.Interrupt(firstRun);
        await reader.RequestAsync(2);

        Assert.Equal(new RunStarting(secondRun), await reader.ExpectNextAsync());
        // The interrupts came before this event: had one ended the second run, its end would be here instead.
        second.Say(new TextDelta("ok"));
        Assert.Equal(new TextDelta("ok"), await reader.ExpectNextAsync());
        Assert.False(second.TokenCancelled.IsCompleted);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task Run_aborted_before_the_reader_asked_for_anything_is_still_started_then_ended() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var run = NewRun(agent.Events);
        var cause = new InvalidOperationException("aborted at once");
        await reader.EnsureSubscriptionAsync();

        // No demand yet: the start marker has to wait, and so does the end. (The stage's actor takes these signals and the
        // request below in the order this thread sends them: the stage has both before the reader asks for anything.)
        control.Start(run);
        run.Abort(cause);
        control.Interrupt(run);
        await reader.RequestAsync(10);

        Assert.Equal(new RunStarting(run), await reader.ExpectNextAsync());
        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
        // The agent was never asked for an event.
        Assert.Equal(0, agent.Produced);
    });

    [Fact]
    public Task A_run_stopped_before_it_reached_the_lane_is_started_then_ended_and_its_agent_is_never_enumerated() =>
        NothingLeftRunningAfterAsync(async () =>
        {
            var (control, reader) = Materialize();
            // Asking either agent for an enumerator would end its run with this failure instead.
            var enumerated = new InvalidOperationException("the agent was enumerated");
            var cancelled = NewRun(new BrokenAgent(enumerated));
            var aborted = NewRun(new BrokenAgent(enumerated));
            var cause = new InvalidOperationException("aborted before the start");
            cancelled.Cancel();
            aborted.Abort(cause);

            await reader.RequestAsync(10);
            control.Start(cancelled);

            Assert.Equal(new RunStarting(cancelled), await reader.ExpectNextAsync());
            Assert.Same(RunCancelled.Instance, await reader.ExpectNextAsync());
            // As a lane does: the next run starts once the one before has gone out.
            control.Start(aborted);
            Assert.Equal(new RunStarting(aborted), await reader.ExpectNextAsync());
            Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
            await ExpectNextRunStartsNextAsync(control, reader);
            await ShutDownAsync(control, reader);
        });

    [Fact]
    public Task Agent_without_an_enumerator_is_started_then_ended_even_before_the_reader_asked() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var cause = new InvalidOperationException("cannot enumerate");
        var run = NewRun(new BrokenAgent(cause));
        await reader.EnsureSubscriptionAsync();

        // As above: the stage has the start before the reader's request.
        control.Start(run);
        await reader.RequestAsync(10);

        Assert.Equal(new RunStarting(run), await reader.ExpectNextAsync());
        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
        await ExpectNextRunStartsNextAsync(control, reader);
        await ShutDownAsync(control, reader);
    });

    [Fact]
    public Task Shutdown_completes_the_lanes_agent_end() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        await reader.RequestAsync(1);

        control.Shutdown();

        await reader.ExpectCompleteAsync();
    });

    [Fact]
    public Task A_lane_that_stops_under_a_run_aborts_it_and_so_stops_its_agent() => NothingLeftRunningAfterAsync(async () =>
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var run = NewRun(agent.Events);
        control.Start(run);
        await reader.RequestAsync(2);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());

        await ShutDownAsync(control, reader);

        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        Assert.IsType<InvalidOperationException>(run.AbortCause);
    });
}
