using System.Text;
using Akka.Streams;
using Akka.Streams.Stage;
using Gateway.Streams.Wire;
using Gateway.Agents;

namespace Gateway.Streams.Lanes;

/// <summary>
/// The one place that enforces an answer's wire order (spec §8), run after run on a lane. For each
/// run it turns the agent's events into <see cref="ChatStreamPart"/>s: the run's opening marker and
/// the role part at once (before the agent is pulled), a content part per non-empty text delta, then
/// exactly one finish part, a usage part when asked for, and done; or, when the run fails, one error
/// part and done; or, when the run was cancelled, a closing marker. Errors are in-band, so the HTTP side
/// can always finish its response cleanly. It completes each run's outcome (reply text, usage,
/// error, or cancelled). It pulls the agent only when downstream pulls, and holds at most the parts
/// of one ending.
/// </summary>
internal sealed class WireOrderStage : GraphStage<FlowShape<AgentEvent, ChatStreamPart>>
{
    /// <summary>
    /// The most reply text an outcome carries by default (for the session's memory;
    /// <c>gateway.sessions.max-remembered-reply-chars</c>); the rest of a longer reply still streams to
    /// the client, it is just not remembered. Without a cap a long answer (a benchmark's 100 MB one,
    /// say) would sit whole in memory until the session forgets it.
    /// </summary>
    public const int MaxRememberedReplyChars = 64 * 1024;

    private readonly int _maxRememberedReplyChars;

    public WireOrderStage(int maxRememberedReplyChars = MaxRememberedReplyChars)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxRememberedReplyChars);
        _maxRememberedReplyChars = maxRememberedReplyChars;
    }

    private const int KeptReplyCapacity = 4 * 1024;

    private readonly Inlet<AgentEvent> _in = new("wireOrder.in");
    private readonly Outlet<ChatStreamPart> _out = new("wireOrder.out");

    public override FlowShape<AgentEvent, ChatStreamPart> Shape => new(_in, _out);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("wireOrder");

    protected override GraphStageLogic CreateLogic(Attributes inheritedAttributes) => new Logic(this);

    private sealed class Logic : InAndOutGraphStageLogic
    {
        private readonly Inlet<AgentEvent> _in;
        private readonly Outlet<ChatStreamPart> _out;
        private readonly int _maxRememberedReplyChars;
        // Made on the first text of a run whose reply is remembered: a lane that carries only stateless runs never needs one.
        private StringBuilder? _reply;
        private long _replyChars;
        private AnswerRun? _run;
        private bool _roleDue;
        private TokenUsage? _usage;
        private bool _committing;
        private readonly Action<Committed> _onCommitted;

        protected override object LogSource => nameof(WireOrderStage);

        // Port counts rather than the shape: the shape constructor formats a log source string every lane would keep.
        public Logic(WireOrderStage stage) : base(inCount: 1, outCount: 1)
        {
            _in = stage._in;
            _out = stage._out;
            _maxRememberedReplyChars = stage._maxRememberedReplyChars;
            _onCommitted = GetAsyncCallback<Committed>(OnCommitted);
            SetHandlers(_in, _out, this);
        }

        public override void OnPull()
        {
            // The run's end waits for its commit, and the next run cannot start before that end: nothing to pull.
            if (_committing) return;
            if (_roleDue)
            {
                _roleDue = false;
                Push(_out, RolePart.Instance);
                return;
            }
            Pull(_in);
        }

        public override void OnPush()
        {
            var agentEvent = Grab(_in);
            if (agentEvent is RunStarting starting)
            {
                Open(starting.Run);
                return;
            }
            if (_run is null)
            {
                // Nothing arrives between runs (the lane's source brackets every run); ignore anything that does.
                Pull(_in);
                return;
            }
            switch (agentEvent)
            {
                case TextDelta { Text.Length: > 0 } delta:
                    Remember(delta.Text);
                    _run.OnText?.Invoke(delta.Text.Length);
                    Push(_out, new ContentPart(delta.Text));
                    break;
                case ToolCallDelta toolCall:
                    Push(_out, new ToolCallPart(toolCall));
                    break;
                case UsageReport report:
                    _usage = report.Usage;
                    Pull(_in);
                    break;
                case RunEnded ended:
                    Finish(ended.FinishReason);
                    break;
                case RunFailed failed:
                    Fail(new ErrorPart(failed.Error, null));
                    break;
                case AgentFault fault:
                    // A failed task reaches us as an AggregateException; the cause is the one inside.
                    var cause = fault.Cause is AggregateException { InnerExceptions.Count: 1 } wrapped ? wrapped.InnerExceptions[0] : fault.Cause;
                    // Only errors we raised on purpose are shown; anything else reads as "internal error".
                    Fail(new ErrorPart(cause is AgentRunException known ? known.Error : ChatError.Internal, cause));
                    break;
                case RunCancelled:
                    Close(Outcome(null, null, cancelled: true));
                    Push(_out, RunCancelledPart.Instance);
                    break;
                default: // an empty delta, or an event this stage does not know: nothing to send
                    Pull(_in);
                    break;
            }
        }

        private void Open(AnswerRun run)
        {
            _run = run;
            _usage = null;
            _reply?.Clear();
            _replyChars = 0;
            _roleDue = true;
            Push(_out, new RunOpened(run));
        }

        private void Finish(string finishReason)
        {
            var run = _run!;
            var usage = _usage ?? new TokenUsage(run.PromptTokenEstimate, (int)Math.Min(int.MaxValue, TokenEstimator.Estimate(_replyChars)));
            _usage = usage;
            var outcome = Outcome(finishReason, null, cancelled: false);
            if (run.Commit is not { } commit)
            {
                EmitEnd(run, outcome);
                return;
            }
            // The end waits until the session has recorded the turn; meanwhile nothing is pulled or pushed.
            _committing = true;
            ValueTask<ChatError?> committing;
            try
            {
                committing = commit.CommitAsync(outcome);
            }
            catch (Exception ex)
            {
                committing = ValueTask.FromException<ChatError?>(ex);
            }
            _ = WaitForCommitAsync(committing, run, outcome);
        }

        /// <summary>
        /// Waits for the session to record the turn. A commit over at once (nothing to write, or a memory-only
        /// session that answered before the lane asked again) is handled here, on the stage's thread, without
        /// allocating; one that waits (a journal write) re-enters the stage through its async callback.
        /// </summary>
        private async Task WaitForCommitAsync(ValueTask<ChatError?> committing, AnswerRun run, TurnOutcome outcome)
        {
            var atOnce = committing.IsCompleted;
            ChatError? failure;
            try
            {
                failure = await committing.ConfigureAwait(false);
            }
            catch (Exception)
            {
                failure = ChatError.Internal;
            }
            var committed = new Committed(run, outcome, failure);
            if (!atOnce)
            {
                _onCommitted(committed);
                return;
            }
            try
            {
                OnCommitted(committed);
            }
            catch (Exception ex)
            {
                // Inside this method a throw would only fault a discarded task; fail the stage, as the
                // interpreter does when a handler throws.
                FailStage(ex);
            }
        }

        private void OnCommitted(Committed committed)
        {
            _committing = false;
            var (run, outcome, failure) = committed;
            if (failure is null)
            {
                EmitEnd(run, outcome);
                return;
            }
            // Not recorded: the client hears why instead of an end, and the session does not remember the turn.
            var error = new ErrorPart(failure, null);
            EmitThenClose(run, [error, DonePart.Instance], outcome with { FinishReason = null, Error = error });
        }

        private void EmitEnd(AnswerRun run, TurnOutcome outcome)
        {
            var finish = new FinishPart(outcome.FinishReason!);
            ChatStreamPart[] parts = run.IncludeUsage
                ? [finish, new UsagePart(outcome.Usage!), DonePart.Instance]
                : [finish, DonePart.Instance];
            EmitThenClose(run, parts, outcome);
        }

        private void Fail(ErrorPart error) => EmitThenClose(_run!, [error, DonePart.Instance], Outcome(null, error, cancelled: false));

        private void EmitThenClose(AnswerRun run, ChatStreamPart[] parts, TurnOutcome outcome)
        {
            // The role part goes first even when the run ends before the reader pulled it.
            if (_roleDue)
            {
                _roleDue = false;
                parts = [RolePart.Instance, .. parts];
            }
            _run = null;
            EmitMultiple(_out, parts, () => run.SetOutcome(outcome));
        }

        private void Close(TurnOutcome outcome)
        {
            var run = _run!;
            _run = null;
            _roleDue = false;
            run.SetOutcome(outcome);
        }

        private void Remember(string text)
        {
            _replyChars += text.Length;
            if (!_run!.RemembersReply) return;
            _reply ??= new StringBuilder();
            var room = _maxRememberedReplyChars - _reply.Length;
            if (room > 0) _reply.Append(text, 0, Math.Min(room, text.Length));
        }

        private TurnOutcome Outcome(string? finishReason, ErrorPart? error, bool cancelled)
        {
            var outcome = new TurnOutcome(_reply is { Length: > 0 } reply ? reply.ToString() : "", finishReason, _usage, error, cancelled);
            // An idle lane keeps a small buffer for the next run, not the largest reply it ever carried (nor does
            // a stopped one, whose stage stays in memory as long as the lanes it shares an interpreter with).
            if (_reply is { Capacity: > KeptReplyCapacity }) _reply = null;
            return outcome;
        }

        public override void PostStop() => _reply = null;
    }

    /// <summary>A run's commit is over: <paramref name="Failure"/> is null when the turn was recorded.</summary>
    private sealed record Committed(AnswerRun Run, TurnOutcome Outcome, ChatError? Failure);
}
