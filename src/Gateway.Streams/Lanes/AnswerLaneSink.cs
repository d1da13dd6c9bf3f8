using Akka.Streams;
using Akka.Streams.Stage;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// The answer end of a lane: it hands each part to the current run's end (<see cref="AnswerRun.DeliverAsync"/>:
/// the writer of a streamed answer, or the completion fold) and pulls the next part only once the end has
/// taken it, so a slow reader holds up its own lane and no other. A streamed run's parts are sent per
/// burst: when the agent has nothing more ready (the stage asks to be woken after the events queued for
/// it), or after <c>burstLimit</c> parts; while a flush waits for the reader, the lane takes no more.
/// After a run's last part (done, or the marker of a cancelled run) it tells its owner the lane is free.
/// </summary>
internal sealed class AnswerLaneSink(int burstLimit) : GraphStageWithMaterializedValue<SinkShape<ChatStreamPart>, AnswerLaneSink.Control>
{
    private readonly Inlet<ChatStreamPart> _in = new("answerLane.in");
    private readonly int _burstLimit = burstLimit >= 1 ? burstLimit : throw new ArgumentOutOfRangeException(nameof(burstLimit));

    public override SinkShape<ChatStreamPart> Shape => new(_in);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("answerLane");

    public override ILogicAndMaterializedValue<Control> CreateLogicAndMaterializedValue(Attributes inheritedAttributes)
    {
        var logic = new Logic(this);
        return new LogicAndMaterializedValue<Control>(logic, logic.Controls);
    }

    /// <summary>What the answer end tells the lane's owner (the pool), on the lane's thread.</summary>
    internal interface IOwner
    {
        /// <summary>The run's last part has been handed to its end: the lane may carry the next run.</summary>
        void OnRunDone(AnswerRun run);

        /// <summary>The lane has stopped (shut down, or broken by a bug).</summary>
        void OnLaneStopped();
    }

    /// <summary>Thread-safe entries into the stage; they share its one async callback (see <see cref="AgentLaneSource.Control"/>).</summary>
    internal sealed class Control(Action<object> signal)
    {
        private IOwner? _owner;
        private int _stopped;

        /// <summary>The run was stopped (<see cref="AnswerRun.Stopping"/>): when cancelled, drop the rest of it.</summary>
        public void Interrupt(AnswerRun run) => signal(new Interrupted(run));

        /// <summary>Who hears of the lane's runs and its stop; set once the lane is made, before its first run.</summary>
        public IOwner? Owner
        {
            get => Volatile.Read(ref _owner);
            set => Volatile.Write(ref _owner, value);
        }

        /// <summary>True once the lane has stopped (shut down, or broken by a bug).</summary>
        public bool Stopped => Volatile.Read(ref _stopped) == 1;

        // A full fence: the pool reads its lane's run after this, and writes the run before reading this.
        internal void MarkStopped() => Interlocked.Exchange(ref _stopped, 1);
    }

    private sealed record Interrupted(AnswerRun Run);

    /// <summary>A delivery or a flush that had to wait is over.</summary>
    private sealed record Waited(AnswerRun Run, bool ReaderThere);

    private sealed class Logic : InGraphStageLogic
    {
        private readonly Inlet<ChatStreamPart> _in;
        private readonly int _burstLimit;
        // One async callback for every signal: a run's burst end (the run itself), its interruption, or a wait that is over.
        private readonly Action<object> _signal;
        private AnswerRun? _run;
        private bool _dropping;
        // A part whose delivery waits (a streamed run's writer has not come yet); a part taken while a flush waits.
        private ChatStreamPart? _delivering;
        private ChatStreamPart? _held;
        private bool _flushing;
        private int _unflushed;
        private bool _burstEndAsked;

        // Port counts rather than the shape: the shape constructor formats a log source string every lane would keep.
        public Logic(AnswerLaneSink stage) : base(inCount: 1, outCount: 0)
        {
            _in = stage._in;
            _burstLimit = stage._burstLimit;
            _signal = GetAsyncCallback<object>(OnSignal);
            Controls = new Control(_signal);
            SetHandler(_in, this);
        }

        public Control Controls { get; }

        protected override object LogSource => nameof(AnswerLaneSink);

        public override void PreStart() => Pull(_in);

        private void OnSignal(object signal)
        {
            switch (signal)
            {
                case AnswerRun run:
                    OnBurstEnd(run);
                    break;
                case Interrupted interrupted:
                    OnInterrupted(interrupted.Run);
                    break;
                case Waited waited:
                    OnWaited(waited.Run, waited.ReaderThere);
                    break;
            }
        }

        public override void OnPush()
        {
            var part = Grab(_in);
            if (part is RunOpened opened)
            {
                Open(opened.Run);
                Pull(_in);
                return;
            }
            if (_run is not { } run)
            {
                // Nothing arrives between runs (the wire order brackets every run); ignore anything that does.
                Pull(_in);
                return;
            }
            // A cancel is seen here before its signal arrives: nothing after it reaches the reader.
            if (!_dropping && run.Cancelled)
            {
                _dropping = true;
                run.Close(null);
            }
            if (_dropping || part is RunCancelledPart)
            {
                Drop(run, part);
                return;
            }
            if (_flushing)
            {
                _held = part;
                return;
            }
            Deliver(run, part);
        }

        public override void PostStop()
        {
            // Only a bug (or the system's shutdown) stops a lane with a run on it: its reader gets a failure rather than waiting forever.
            _run?.Close(new InvalidOperationException("The answer's lane stopped."));
            // A stopped lane's stages stay in memory while their interpreter carries other lanes: hold nothing.
            _run = null;
            _delivering = null;
            _held = null;
            Controls.MarkStopped();
            Controls.Owner?.OnLaneStopped();
        }

        private void Open(AnswerRun run)
        {
            _run = run;
            // Cancelled before its first part reached this end (the interruption came first, and found no run).
            _dropping = run.Cancelled;
            if (_dropping) run.Close(null);
            _unflushed = 0;
            _burstEndAsked = false;
        }

        private void Deliver(AnswerRun run, ChatStreamPart part)
        {
            _delivering = part;
            _ = WaitAsync(run.DeliverAsync(part), run);
        }

        private void Delivered(AnswerRun run, ChatStreamPart part, bool readerThere)
        {
            if (_dropping)
            {
                Drop(run, part);
                return;
            }
            if (!readerThere)
            {
                CancelForGoneReader(run);
                Drop(run, part);
                return;
            }
            if (part is DonePart)
            {
                RunDone(run);
                return;
            }
            Pull(_in);
            if (!run.Flushes) return;
            if (++_unflushed >= _burstLimit) Flush(run);
            else if (!_burstEndAsked)
            {
                // Woken after the events queued for this stage now: the agent's burst has ended by then.
                _burstEndAsked = true;
                _signal(run);
            }
        }

        private void OnBurstEnd(AnswerRun run)
        {
            if (!ReferenceEquals(run, _run) || _dropping) return;
            _burstEndAsked = false;
            if (_flushing || _delivering is not null)
            {
                // Asked again once the wait is over (the parts it holds back are the same burst).
                _burstEndAsked = true;
                return;
            }
            if (_unflushed > 0) Flush(run);
        }

        private void Flush(AnswerRun run)
        {
            _unflushed = 0;
            _flushing = true;
            _ = WaitAsync(run.FlushAsync(), run);
        }

        /// <param name="atOnce">The delivery or flush was over at once, handled within the call that started it.</param>
        private void OnWaited(AnswerRun run, bool readerThere, bool atOnce = false)
        {
            if (!ReferenceEquals(run, _run)) return;
            if (_delivering is { } part)
            {
                _delivering = null;
                Delivered(run, part, readerThere);
            }
            else if (_flushing)
            {
                _flushing = false;
                if (!readerThere && !_dropping) CancelForGoneReader(run);
                if (_held is { } held)
                {
                    _held = null;
                    if (_dropping) Drop(run, held);
                    else Deliver(run, held);
                }
            }
            // A burst end that came while this waited is asked again (one that is still queued needs no second).
            if (!atOnce && _burstEndAsked && ReferenceEquals(run, _run) && !_flushing && _delivering is null) _signal(run);
        }

        private void OnInterrupted(AnswerRun run)
        {
            // An abort needs nothing here: its error part comes down the lane.
            if (!ReferenceEquals(run, _run) || _dropping || !run.Cancelled) return;
            _dropping = true;
            run.Close(null);
            // The reader left while its run waited for a flush: drop the part held back and move on.
            if (_held is not { } held) return;
            _held = null;
            Drop(run, held);
        }

        /// <summary>The run's end found its reader gone: stop the agent (the lane then drops the rest of the run).</summary>
        private void CancelForGoneReader(AnswerRun run)
        {
            // Cancelled before it is closed: a run that is closed has nothing left to stop.
            run.Cancel();
            _dropping = true;
            run.Close(null);
        }

        private void Drop(AnswerRun run, ChatStreamPart part)
        {
            if (part is DonePart or RunCancelledPart) RunDone(run);
            else Pull(_in);
        }

        private void RunDone(AnswerRun run)
        {
            // Closing twice is harmless: a streamed run closes itself on its done part.
            run.Close(null);
            _run = null;
            _dropping = false;
            _held = null;
            _flushing = false;
            Controls.Owner?.OnRunDone(run);
            Pull(_in);
        }

        /// <summary>
        /// Waits for a delivery or a flush. One over at once (nearly every one: the part is folded or appended, the
        /// flush finds room) is handled here, on the stage's thread: the await does not suspend, and an async method
        /// that completes without suspending allocates nothing. One that waits (a slow reader, a writer not handed
        /// over yet) re-enters the stage through its async callback when it is over.
        /// </summary>
        private async Task WaitAsync(ValueTask<bool> wait, AnswerRun run)
        {
            var atOnce = wait.IsCompleted;
            bool readerThere;
            try
            {
                readerThere = await wait.ConfigureAwait(false);
            }
            catch (Exception)
            {
                readerThere = false;
            }
            if (!atOnce)
            {
                _signal(new Waited(run, readerThere));
                return;
            }
            try
            {
                OnWaited(run, readerThere, atOnce: true);
            }
            catch (Exception ex)
            {
                // Inside this method a throw would only fault a discarded task; fail the stage, as the
                // interpreter does when a handler throws.
                FailStage(ex);
            }
        }
    }
}
