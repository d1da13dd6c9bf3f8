using Akka.Streams;
using Akka.Streams.Stage;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// The answer end of a lane: it hands each part to the current run's end (the response, as SSE, or
/// the completion fold) and pulls the next part only when that end has room, so a slow reader holds
/// up its own lane and no other. After a run's last part (done, or the closing marker of a cancelled
/// run) the lane goes back to the pool.
/// </summary>
internal sealed class AnswerLaneSink(RunLanes pool) : GraphStageWithMaterializedValue<SinkShape<ChatStreamPart>, AnswerLaneSink.Control>
{
    private readonly Inlet<ChatStreamPart> _in = new("answerLane.in");
    private readonly RunLanes _pool = pool;

    public override SinkShape<ChatStreamPart> Shape => new(_in);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("answerLane");

    public override ILogicAndMaterializedValue<Control> CreateLogicAndMaterializedValue(Attributes inheritedAttributes)
    {
        var logic = new Logic(this);
        return new LogicAndMaterializedValue<Control>(logic, logic.Controls);
    }

    /// <summary>Thread-safe entries into the stage; they share its one async callback (see <see cref="AgentLaneSource.Control"/>).</summary>
    internal sealed class Control(Action<object> signal)
    {
        private int _stopped;

        /// <summary>The reader left: stop waiting for it and drop the rest of its run.</summary>
        public void Cancel(AnswerRun run) => signal(new Cancelled(run));

        /// <summary>The run wants the lane's attention (<see cref="AnswerRun.OnWake"/>): it may have room again, or its burst has ended.</summary>
        public void Wake(AnswerRun run) => signal(run);

        /// <summary>The lane this end belongs to; set by the pool once the lane is made.</summary>
        public Lane? Lane { get; set; }

        /// <summary>True once the lane has stopped (shut down, or broken by a bug).</summary>
        public bool Stopped => Volatile.Read(ref _stopped) == 1;

        // A full fence (see RunLanes.Assign): the pool reads Run after this, and writes Run before reading it.
        internal void MarkStopped() => Interlocked.Exchange(ref _stopped, 1);
    }

    private sealed record Cancelled(AnswerRun Run);

    private sealed class Logic : InGraphStageLogic
    {
        private readonly Inlet<ChatStreamPart> _in;
        private readonly RunLanes _pool;
        // One async callback for both signals: a run woke the lane (the run), or its reader left.
        private readonly Action<object> _signal;
        private AnswerRun? _run;
        private bool _dropping;
        private ChatStreamPart? _pending;

        // Port counts rather than the shape: the shape constructor formats a log source string every lane would keep.
        public Logic(AnswerLaneSink stage) : base(inCount: 1, outCount: 0)
        {
            _in = stage._in;
            _pool = stage._pool;
            _signal = GetAsyncCallback<object>(signal =>
            {
                if (signal is Cancelled cancelled) OnCancel(cancelled.Run);
                else OnWake((AnswerRun)signal);
            });
            Controls = new Control(_signal);
            SetHandler(_in, this);
        }

        public Control Controls { get; }

        protected override object LogSource => nameof(AnswerLaneSink);

        public override void PreStart() => Pull(_in);

        public override void OnPush()
        {
            var part = Grab(_in);
            if (part is RunOpened opened)
            {
                _run = opened.Run;
                _dropping = false;
                opened.Run.Opened(Controls);
                // Its reader left before the run reached this end (the cancel signal came first, and found no run).
                if (opened.Run.CancelRequested) OnCancel(opened.Run);
                Pull(_in);
                return;
            }
            if (_run is not { } run)
            {
                Pull(_in);
                return;
            }
            if (part is RunClosed)
            {
                if (!_dropping) run.Close(null);
                AfterDelivered(part);
                return;
            }
            if (_dropping || run.TryDeliver(part))
            {
                AfterDelivered(part);
                return;
            }
            // The run wakes this end once it may have room (OnWake).
            _pending = part;
        }

        public override void PostStop()
        {
            // Only a bug stops a lane with a run on it; its reader gets a failure rather than waiting forever.
            _run?.Close(new InvalidOperationException("The answer's lane stopped."));
            // A stopped lane's stages stay in memory while their interpreter carries other lanes: hold nothing.
            _run = null;
            _pending = null;
            Controls.MarkStopped();
            // Told here rather than through a task's continuation: that would cost every lane a task,
            // a continuation and a completion source for its whole life.
            _pool.OnLaneStopped(Controls);
        }

        private void OnWake(AnswerRun run)
        {
            if (!ReferenceEquals(run, _run) || _dropping) return;
            run.OnWake();
            if (_pending is not { } part || !run.TryDeliver(part)) return;
            _pending = null;
            AfterDelivered(part);
        }

        private void OnCancel(AnswerRun run)
        {
            if (!ReferenceEquals(run, _run) || _dropping) return;
            _dropping = true;
            run.Close(null);
            if (_pending is not { } part) return;
            // The reader left while its run waited for room: drop the part and move on.
            _pending = null;
            AfterDelivered(part);
        }

        private void AfterDelivered(ChatStreamPart part)
        {
            if (part is DonePart or RunClosed)
            {
                var run = _run!;
                _run = null;
                _dropping = false;
                _pool.Return(run);
            }
            Pull(_in);
        }
    }
}
