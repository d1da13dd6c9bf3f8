using System.Runtime.CompilerServices;
using Akka.Streams;
using Akka.Streams.Stage;
using Gateway.Agents;

namespace Gateway.Streams.Lanes;

/// <summary>
/// The agent end of a lane: it reads the current run's agent one event per downstream pull (so a
/// slow reader slows the agent), and brackets each run with <see cref="RunStarting"/> and exactly one
/// terminal event (the agent's end or error, <see cref="AgentFault"/>, or <see cref="RunCancelled"/>).
/// An agent that throws ends only its own run; the lane goes on with the next one.
/// </summary>
internal sealed class AgentLaneSource : GraphStageWithMaterializedValue<SourceShape<AgentEvent>, AgentLaneSource.Control>
{
    private readonly Outlet<AgentEvent> _out = new("agentLane.out");

    public override SourceShape<AgentEvent> Shape => new(_out);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("agentLane");

    public override ILogicAndMaterializedValue<Control> CreateLogicAndMaterializedValue(Attributes inheritedAttributes)
    {
        var logic = new Logic(this);
        return new LogicAndMaterializedValue<Control>(logic, logic.Controls);
    }

    /// <summary>
    /// Thread-safe entries into the stage. They share one async callback (they queue until the stage
    /// runs): each callback costs a lane a few hundred bytes for its whole life, and a lane lives as
    /// long as its longest stream.
    /// </summary>
    internal sealed class Control(Action<object> signal)
    {
        public void Start(AnswerRun run) => signal(run);

        /// <summary>The run was stopped (<see cref="AnswerRun.Stopping"/>): end it now, cancelled or aborted.</summary>
        public void Interrupt(AnswerRun run) => signal(new Interrupted(run));

        public void Shutdown() => signal(ShutdownSignal.Instance);
    }

    private sealed record Interrupted(AnswerRun Run);

    private sealed record ShutdownSignal
    {
        public static ShutdownSignal Instance { get; } = new();
    }

    /// <summary>A step of the agent that had to be waited for, and how it ended.</summary>
    private sealed record Moved(AnswerRun Run, IAsyncEnumerator<AgentEvent> Events, bool HasEvent, Exception? Failure);

    private sealed class Logic : OutGraphStageLogic
    {
        private readonly Outlet<AgentEvent> _out;
        private readonly Action<object> _signal;
        private AnswerRun? _run;
        private IAsyncEnumerator<AgentEvent>? _events;
        private bool _moving;
        // What to push next without asking the agent: the start marker, and a run's last event. Two fields
        // rather than a queue: a lane lives as long as its longest stream, and a queue costs it two objects.
        private AgentEvent? _nextFirst;
        private AgentEvent? _nextSecond;

        // Port counts rather than the shape: the shape constructor formats the shape into a log source
        // string, which every lane would keep.
        public Logic(AgentLaneSource stage) : base(inCount: 0, outCount: 1)
        {
            _out = stage._out;
            _signal = GetAsyncCallback<object>(OnSignal);
            Controls = new Control(_signal);
            SetHandler(_out, this);
        }

        public Control Controls { get; }

        protected override object LogSource => nameof(AgentLaneSource);

        private void OnSignal(object signal)
        {
            switch (signal)
            {
                case Moved moved:
                    OnMoved(moved.Run, moved.Events, moved.HasEvent, moved.Failure);
                    break;
                case AnswerRun run:
                    OnStart(run);
                    break;
                case Interrupted interrupted:
                    End(interrupted.Run, StoppedEvent(interrupted.Run));
                    break;
                case ShutdownSignal:
                    CompleteStage();
                    break;
            }
        }

        public override void OnPull()
        {
            if (_nextFirst is { } next)
            {
                _nextFirst = _nextSecond;
                _nextSecond = null;
                Push(_out, next);
                return;
            }
            if (_run is not null && !_moving) Move();
        }

        public override void PostStop()
        {
            if (_run is not { } run) return;
            var cause = new InvalidOperationException("The run's lane stopped.");
            // Stops an agent step still running.
            run.Abort(cause);
            End(run, new AgentFault(cause));
        }

        private void OnStart(AnswerRun run)
        {
            _run = run;
            if (run.Stopping.IsCancellationRequested)
            {
                // Stopped before it reached the lane.
                Emit(new RunStarting(run));
                End(run, StoppedEvent(run));
                return;
            }
            try
            {
                // The run's own token: stopping the run (a cancel, an abort) stops an agent step still running.
                _events = run.Agent.GetAsyncEnumerator(run.Stopping);
                Emit(new RunStarting(run));
            }
            catch (Exception ex)
            {
                Emit(new RunStarting(run));
                End(run, new AgentFault(ex));
            }
        }

        private void Emit(AgentEvent agentEvent)
        {
            if (_nextFirst is null && IsAvailable(_out)) Push(_out, agentEvent);
            else if (_nextFirst is null) _nextFirst = agentEvent;
            // A run has a start marker and one last event, and the next run starts only after both have gone.
            else if (_nextSecond is null) _nextSecond = agentEvent;
            else throw new InvalidOperationException("A lane's agent end held more than a run's start and end.");
        }

        private void Move()
        {
            _moving = true;
            _ = MoveAsync(_run!, _events!);
        }

        /// <summary>
        /// Takes the agent's next step. A step that has finished already (most built-in steps) is handled at
        /// once, on the stage's own thread: the await does not suspend, and an async method that completes
        /// without suspending allocates nothing. A step still running (a model call, a delay) re-enters the
        /// stage through its async callback when it ends.
        /// </summary>
        private async Task MoveAsync(AnswerRun run, IAsyncEnumerator<AgentEvent> events)
        {
            var finishedAtOnce = true;
            var hasEvent = false;
            Exception? failure = null;
            try
            {
                var step = events.MoveNextAsync();
                finishedAtOnce = step.IsCompleted;
                hasEvent = await step.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                failure = ex;
            }
            if (!finishedAtOnce)
            {
                _signal(new Moved(run, events, hasEvent, failure));
                return;
            }
            try
            {
                OnMoved(run, events, hasEvent, failure);
            }
            catch (Exception ex)
            {
                // Inside this method a throw would only fault a discarded task; fail the stage, as the
                // interpreter does when a handler throws.
                FailStage(ex);
            }
        }

        private void OnMoved(AnswerRun run, IAsyncEnumerator<AgentEvent> events, bool hasEvent, Exception? failure)
        {
            if (!ReferenceEquals(run, _run))
            {
                // The run was aborted or cancelled while the agent was busy; its enumerator is idle only now.
                DisposeInBackground(events);
                return;
            }
            _moving = false;
            // A run that was stopped ends as the stop says, whatever its step came back with (a failure, or an agent
            // that ends quietly when its token fires): the step can finish before the lane's signal arrives.
            if (run.Stopping.IsCancellationRequested) End(run, StoppedEvent(run));
            else if (failure is not null) End(run, new AgentFault(failure));
            else if (!hasEvent) End(run, new RunEnded());
            else if (events.Current is RunEnded or RunFailed) End(run, events.Current);
            else Push(_out, events.Current);
        }

        /// <summary>Ends the current run with <paramref name="last"/> (ignored for a run already ended).</summary>
        private void End(AnswerRun run, AgentEvent last)
        {
            if (!ReferenceEquals(run, _run)) return;
            _run = null;
            // An enumerator in the middle of a step cannot be disposed; OnMoved disposes it when the step ends.
            if (!_moving) DisposeInBackground(_events);
            _events = null;
            _moving = false;
            if (IsClosed(_out)) return;
            Emit(last);
        }

        /// <summary>How a stopped run ends: cancelled, or aborted with its cause.</summary>
        private static AgentEvent StoppedEvent(AnswerRun run) =>
            run.AbortCause is { } cause ? new AgentFault(cause) : RunCancelled.Instance;

        private static void DisposeInBackground(IAsyncEnumerator<AgentEvent>? events)
        {
            if (events is null) return;
            try
            {
                var disposing = events.DisposeAsync();
                if (!disposing.IsCompleted) _ = ObserveAsync(disposing);
            }
            catch
            {
                // An agent that cannot clean up has nothing more to say to a run that has ended.
            }
        }

        private static async Task ObserveAsync(ValueTask disposing)
        {
            try
            {
                await disposing.ConfigureAwait(false);
            }
            catch
            {
                // As above.
            }
        }
    }
}
