using Akka.Streams;
using Akka.Streams.Stage;
using Gateway.Streams;

namespace Gateway.Actors.Agents;

/// <summary>
/// The built-in agent's run as one source stage: its text pieces (made one at a time, as they are
/// pulled), then its usage, then the end. With a delay, a piece goes out no sooner than one delay
/// after the start and after the previous piece (the pace of Throttle in shaping mode with an
/// initial delay), so it can stand in for a model's tokens. One stage instead of a small graph of
/// From, Select, Concat and Throttle: a run's graph is built, fused and materialized per request,
/// and every stage in it costs time and memory there.
/// </summary>
internal sealed class BuiltInAgentSource(IEnumerable<string> pieces, UsageReport usage, TimeSpan delay)
    : GraphStage<SourceShape<AgentEvent>>
{
    private readonly Outlet<AgentEvent> _out = new("builtInAgent.out");
    private readonly IEnumerable<string> _pieceTexts = pieces;
    private readonly UsageReport _usage = usage;
    private readonly TimeSpan _delay = delay;

    public override SourceShape<AgentEvent> Shape => new(_out);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("builtInAgent");

    protected override GraphStageLogic CreateLogic(Attributes inheritedAttributes) => new Logic(this);

    private sealed class Logic : TimerGraphStageLogic, IOutHandler
    {
        private const string PieceTimer = "piece";
        private readonly BuiltInAgentSource _stage;
        private IEnumerator<string>? _pieces;
        private bool _piecesDone;
        private bool _usageSent;
        private long _nextPieceAt;

        public Logic(BuiltInAgentSource stage) : base(stage.Shape)
        {
            _stage = stage;
            SetHandler(stage._out, this);
        }

        public override void PreStart()
        {
            _pieces = _stage._pieceTexts.GetEnumerator();
            _nextPieceAt = Environment.TickCount64 + (long)_stage._delay.TotalMilliseconds;
        }

        public void OnPull()
        {
            if (!_piecesDone && _stage._delay > TimeSpan.Zero)
            {
                var wait = _nextPieceAt - Environment.TickCount64;
                if (wait > 0)
                {
                    ScheduleOnce(PieceTimer, TimeSpan.FromMilliseconds(wait));
                    return;
                }
            }
            PushNext();
        }

        protected override void OnTimer(object timerKey) => PushNext();

        public void OnDownstreamFinish(Exception cause) => CompleteStage();

        public override void PostStop() => _pieces?.Dispose();

        private void PushNext()
        {
            if (!_piecesDone)
            {
                if (_pieces!.MoveNext())
                {
                    _nextPieceAt = Environment.TickCount64 + (long)_stage._delay.TotalMilliseconds;
                    Push(_stage._out, new TextDelta(_pieces.Current));
                    return;
                }
                _piecesDone = true;
            }
            if (!_usageSent)
            {
                _usageSent = true;
                Push(_stage._out, _stage._usage);
                return;
            }
            Push(_stage._out, new RunEnded());
            CompleteStage();
        }
    }
}
