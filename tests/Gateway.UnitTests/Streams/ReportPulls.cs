using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Stage;

namespace Gateway.UnitTests.Streams;

/// <summary>A pass-through stage that tells <paramref name="observer"/> each time downstream pulls it.</summary>
/// <remarks>
/// A <c>TestSource.SourceProbe</c> is a publisher, and the graph's input boundary asks it for a whole
/// buffer (16) at once, so its <c>ExpectRequest</c> sees the boundary's prefetch, not the pulls of the
/// stage under test. This stage sits fused right before that stage, so what it reports are that stage's
/// own pulls, one by one.
/// </remarks>
public sealed class ReportPulls<T>(IActorRef observer) : GraphStage<FlowShape<T, T>>
{
    public sealed record Pulled
    {
        public static Pulled Instance { get; } = new();
    }

    private readonly Inlet<T> _in = new("reportPulls.in");
    private readonly Outlet<T> _out = new("reportPulls.out");

    public override FlowShape<T, T> Shape => new(_in, _out);

    protected override GraphStageLogic CreateLogic(Attributes inheritedAttributes) => new Logic(this);

    private sealed class Logic : InAndOutGraphStageLogic
    {
        private readonly ReportPulls<T> _stage;

        public Logic(ReportPulls<T> stage) : base(stage.Shape)
        {
            _stage = stage;
            SetHandlers(stage._in, stage._out, this);
        }

        public override void OnPush() => Push(_stage._out, Grab(_stage._in));

        public override void OnPull()
        {
            _stage.Observer.Tell(Pulled.Instance);
            Pull(_stage._in);
        }
    }

    private IActorRef Observer { get; } = observer;
}
