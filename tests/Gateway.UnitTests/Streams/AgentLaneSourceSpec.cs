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
/// </summary>
public sealed class AgentLaneSourceSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_9", 1767225600, "openclaw");
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    private (AgentLaneSource.Control Control, TestSubscriber.Probe<AgentEvent> Reader) Materialize() =>
        Source.FromGraph(new AgentLaneSource())
            .ToMaterialized(this.SinkProbe<AgentEvent>(), Keep.Both)
            .Run(Sys.Materializer());

    private static CompletionRun NewRun(IAsyncEnumerable<AgentEvent> agent) => new(agent, Header, 1, null);

    [Fact]
    public async Task A_run_is_its_start_marker_its_events_then_one_end()
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
        await reader.ExpectNoMsgAsync(Quiet);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
    }

    [Fact]
    public async Task The_agent_is_read_one_event_per_pull()
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new TextDelta("a"), new TextDelta("b"), new TextDelta("c"), new TextDelta("d"));

        control.Start(NewRun(agent.Events));
        await reader.RequestAsync(1);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        await Task.Delay(Quiet);
        Assert.Equal(0, agent.Produced);

        await reader.RequestAsync(2);
        Assert.Equal(new TextDelta("a"), await reader.ExpectNextAsync());
        Assert.Equal(new TextDelta("b"), await reader.ExpectNextAsync());
        await Task.Delay(Quiet);
        Assert.Equal(2, agent.Produced);
    }

    [Fact]
    public async Task The_agents_own_end_event_ends_the_run_and_the_agent_is_disposed()
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        agent.Say(new RunFailed(ChatError.Internal), new TextDelta("never read"));

        control.Start(NewRun(agent.Events));
        await reader.RequestAsync(10);

        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());
        Assert.Equal(new RunFailed(ChatError.Internal), await reader.ExpectNextAsync());
        await agent.Stopped.WaitAsync(RemainingOrDefault);
        await reader.ExpectNoMsgAsync(Quiet);
        Assert.Equal(1, agent.Produced);
    }

    [Fact]
    public async Task Cancel_stops_a_busy_agent_and_ends_the_run_with_RunCancelled()
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var run = NewRun(agent.Events);
        control.Start(run);
        await reader.RequestAsync(2);
        Assert.IsType<RunStarting>(await reader.ExpectNextAsync());

        control.Cancel(run);

        Assert.Same(RunCancelled.Instance, await reader.ExpectNextAsync());
        await agent.TokenCancelled.WaitAsync(RemainingOrDefault);
        await agent.Stopped.WaitAsync(RemainingOrDefault);
    }

    [Fact]
    public async Task Abort_and_cancel_of_a_run_that_is_not_on_the_lane_are_ignored()
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
        control.Abort(firstRun, new InvalidOperationException("late"));
        control.Cancel(firstRun);
        await reader.RequestAsync(2);

        Assert.Equal(new RunStarting(secondRun), await reader.ExpectNextAsync());
        await reader.ExpectNoMsgAsync(Quiet);
        Assert.False(second.TokenCancelled.IsCompleted);
        second.Say(new TextDelta("ok"));
        Assert.Equal(new TextDelta("ok"), await reader.ExpectNextAsync());
    }

    [Fact]
    public async Task Run_aborted_before_the_reader_asked_for_anything_is_still_started_then_ended()
    {
        var (control, reader) = Materialize();
        var agent = new ScriptedAgent();
        var run = NewRun(agent.Events);
        var cause = new InvalidOperationException("aborted at once");

        // No demand yet: the start marker has to wait, and so does the end.
        control.Start(run);
        control.Abort(run, cause);
        await reader.EnsureSubscriptionAsync();
        await reader.ExpectNoMsgAsync(Quiet);
        await reader.RequestAsync(10);

        Assert.Equal(new RunStarting(run), await reader.ExpectNextAsync());
        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
        await reader.ExpectNoMsgAsync(Quiet);
        // The agent was never asked for an event.
        Assert.Equal(0, agent.Produced);
    }

    [Fact]
    public async Task Agent_without_an_enumerator_is_started_then_ended_even_before_the_reader_asked()
    {
        var (control, reader) = Materialize();
        var cause = new InvalidOperationException("cannot enumerate");
        var run = NewRun(new BrokenAgent(cause));

        control.Start(run);
        await reader.EnsureSubscriptionAsync();
        await reader.ExpectNoMsgAsync(Quiet);
        await reader.RequestAsync(10);

        Assert.Equal(new RunStarting(run), await reader.ExpectNextAsync());
        Assert.Same(cause, Assert.IsType<AgentFault>(await reader.ExpectNextAsync()).Cause);
    }

    [Fact]
    public async Task Shutdown_completes_the_lanes_agent_end()
    {
        var (control, reader) = Materialize();
        await reader.RequestAsync(1);

        control.Shutdown();

        await reader.ExpectCompleteAsync();
    }
}
