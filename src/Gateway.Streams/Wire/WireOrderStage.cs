using System.Text;
using Akka.Streams;
using Akka.Streams.Stage;

namespace Gateway.Streams.Wire;

/// <summary>
/// The one place that enforces the answer's wire order (spec §8). It turns a run's agent events into
/// <see cref="ChatStreamPart"/>s: the role part at once (before the agent is pulled), a content part per
/// non-empty text delta, then exactly one finish part, a usage part when asked for, and done; or, when
/// the run fails (an error event, or the source failing), one error part and done. The stage never
/// fails downstream: errors are in-band, so the HTTP side can always finish the response cleanly.
/// Its materialized value tells how the turn ended (reply text, usage, error, or cancelled).
/// It pulls the agent only when downstream pulls, and holds at most the parts of one ending.
/// </summary>
public sealed class WireOrderStage : GraphStageWithMaterializedValue<FlowShape<AgentEvent, ChatStreamPart>, Task<TurnOutcome>>
{
    private readonly bool _includeUsage;
    private readonly int _promptTokenEstimate;

    /// <param name="includeUsage">Emit a usage part before done (stream_options.include_usage; always for the folded answer).</param>
    /// <param name="promptTokenEstimate">Prompt tokens to report when the agent reports no usage.</param>
    public WireOrderStage(bool includeUsage, int promptTokenEstimate)
    {
        _includeUsage = includeUsage;
        _promptTokenEstimate = promptTokenEstimate;
        Shape = new FlowShape<AgentEvent, ChatStreamPart>(In, Out);
    }

    /// <summary>Told the length of each text delta as it is pulled from the agent (a metric of what agents produce).</summary>
    public Action<int>? OnText { get; init; }

    public Inlet<AgentEvent> In { get; } = new("wireOrder.in");

    public Outlet<ChatStreamPart> Out { get; } = new("wireOrder.out");

    public override FlowShape<AgentEvent, ChatStreamPart> Shape { get; }

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("wireOrder");

    public override ILogicAndMaterializedValue<Task<TurnOutcome>> CreateLogicAndMaterializedValue(Attributes inheritedAttributes)
    {
        var logic = new Logic(this);
        return new LogicAndMaterializedValue<Task<TurnOutcome>>(logic, logic.Outcome.Task);
    }

    private sealed class Logic : InAndOutGraphStageLogic
    {
        private readonly WireOrderStage _stage;
        private readonly StringBuilder _reply = new();
        private bool _roleSent;
        private bool _ending;
        private TokenUsage? _usage;

        public Logic(WireOrderStage stage) : base(stage.Shape)
        {
            _stage = stage;
            SetHandlers(stage.In, stage.Out, this);
        }

        // Continuations run elsewhere, never inline inside the stage.
        public TaskCompletionSource<TurnOutcome> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void OnPull()
        {
            if (!_roleSent)
            {
                _roleSent = true;
                Push(_stage.Out, RolePart.Instance);
                return;
            }
            Pull(_stage.In);
        }

        public override void OnPush()
        {
            switch (Grab(_stage.In))
            {
                case TextDelta { Text.Length: > 0 } delta:
                    _reply.Append(delta.Text);
                    _stage.OnText?.Invoke(delta.Text.Length);
                    Push(_stage.Out, new ContentPart(delta.Text));
                    break;
                case ToolCallDelta toolCall:
                    Push(_stage.Out, new ToolCallPart(toolCall));
                    break;
                case UsageReport report:
                    _usage = report.Usage;
                    Pull(_stage.In);
                    break;
                case RunEnded ended:
                    Finish(ended.FinishReason);
                    break;
                case RunFailed failed:
                    Fail(new ErrorPart(failed.Error, null));
                    break;
                default: // an empty delta, or an event this stage does not know: nothing to send
                    Pull(_stage.In);
                    break;
            }
        }

        public override void OnUpstreamFinish()
        {
            if (!_ending) Finish(FinishReasons.Stop);
        }

        public override void OnUpstreamFailure(Exception e)
        {
            if (_ending) return;
            // A kill switch's Abort(cause) arrives wrapped in an AggregateException (Akka.NET fails the
            // stage with the switch task's Exception); unwrap it so the cause is the one passed to Abort.
            if (e is AggregateException { InnerExceptions.Count: 1 } aborted) e = aborted.InnerExceptions[0];
            // Only errors we raised on purpose are shown; anything else reads as "internal error".
            Fail(new ErrorPart(e is AgentRunException known ? known.Error : ChatError.Internal, e));
        }

        public override void OnDownstreamFinish(Exception cause)
        {
            // The reader left (client disconnected): stop the agent, and say the turn was cancelled.
            Outcome.TrySetResult(BuildOutcome(null, null, cancelled: true));
            CompleteStage();
        }

        public override void PostStop() =>
            Outcome.TrySetResult(BuildOutcome(null, null, cancelled: true));

        private void Finish(string finishReason)
        {
            _ending = true;
            var usage = _usage ?? new TokenUsage(_stage._promptTokenEstimate, TokenEstimator.Estimate(_reply.Length));
            var parts = new List<ChatStreamPart>(4);
            if (!_roleSent) parts.Add(RolePart.Instance);
            parts.Add(new FinishPart(finishReason));
            if (_stage._includeUsage) parts.Add(new UsagePart(usage));
            parts.Add(DonePart.Instance);
            _usage = usage;
            EmitThenComplete(parts, BuildOutcome(finishReason, null, cancelled: false));
        }

        private void Fail(ErrorPart error)
        {
            _ending = true;
            ChatStreamPart[] parts = _roleSent ? [error, DonePart.Instance] : [RolePart.Instance, error, DonePart.Instance];
            EmitThenComplete(parts, BuildOutcome(null, error, cancelled: false));
        }

        private void EmitThenComplete(IEnumerable<ChatStreamPart> parts, TurnOutcome outcome)
        {
            // Nothing more is needed from the agent once the run has ended.
            if (!IsClosed(_stage.In)) Cancel(_stage.In);
            _roleSent = true;
            EmitMultiple(_stage.Out, parts, () =>
            {
                Outcome.TrySetResult(outcome);
                CompleteStage();
            });
        }

        private TurnOutcome BuildOutcome(string? finishReason, ErrorPart? error, bool cancelled) =>
            new(_reply.ToString(), finishReason, _usage, error, cancelled);
    }
}
