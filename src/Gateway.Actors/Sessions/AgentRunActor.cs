using Akka.Actor;
using Akka.Event;
using Gateway.Actors.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.Actors.Sessions;

/// <summary>
/// One agent turn, as a child of its session. It materializes the run's graph, replies to the
/// waiting client (the stream's reading end at once, or the folded answer at the end), and reports
/// the outcome to its session. Two switches end a run: the agent switch ends it in-band (the client
/// reads an error event, then [DONE]; used for timeouts and crashes); the reader switch tears the
/// whole graph down (used when the client has left). It is stopped, never restarted: half a stream
/// cannot be replayed.
/// </summary>
public sealed class AgentRunActor : UntypedActor, IWithTimers
{
    private const string TimeoutTimer = "run-timeout";

    private readonly StartTurn _turn;
    private readonly IReadOnlyList<ConversationEntry> _history;
    private readonly string? _instructions;
    private readonly IAgentRuntime _runtime;
    private readonly IActorRef _replyTo;
    private readonly SessionSettings _settings;
    private readonly RunLanes _lanes;
    private readonly GatewayMetrics _metrics;
    private ILoggingAdapter? _log;
    private AnswerRun? _run;
    private bool _cancelled;
    private bool _finished;

    public AgentRunActor(StartTurn turn, IReadOnlyList<ConversationEntry> history, string? instructions, IAgentRuntime runtime,
        IActorRef replyTo, SessionSettings settings, RunLanes lanes, GatewayMetrics metrics)
    {
        _turn = turn;
        _history = history;
        _instructions = instructions;
        _runtime = runtime;
        _replyTo = replyTo;
        _settings = settings;
        _lanes = lanes;
        _metrics = metrics;
    }

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    // An untyped actor with one switch: a run starts per request, and a ReceiveActor builds its
    // handler tables per instance.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case TurnOutcome outcome:
                OnOutcome(outcome);
                break;
            case CancelRun:
                Cancel();
                break;
            case RunTimedOut:
                Log.Warning("Run {0} in session {1} timed out after {2}", _turn.TurnId, _turn.SessionKey, _settings.RunTimeout);
                _run?.Abort(new AgentRunException(new ChatError("agent run timed out", "api_error", "timeout", 504)));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(StartTurn turn, IReadOnlyList<ConversationEntry> history, string? instructions, IAgentRuntime runtime,
        IActorRef replyTo, SessionSettings settings, RunLanes lanes, GatewayMetrics metrics) =>
        // A producer, not an expression: a run starts per request, and an expression's arguments are evaluated by reflection.
        Akka.Actor.Props.CreateBy(new Producer(() => new AgentRunActor(turn, history, instructions, runtime, replyTo, settings, lanes, metrics)));

    protected override void PreStart()
    {
        _metrics.RunStarted();
        try
        {
            StartRun();
        }
        catch
        {
            // Akka never calls PostStop on an actor whose PreStart threw, so undo here what PostStop would;
            // the session's supervisor then stops this run and fails its client.
            _metrics.RunFailed();
            PostStop();
            throw;
        }
    }

    private void StartRun()
    {
        var agentTurn = new AgentTurn(_turn.Agent, _turn.SessionKey, _turn.Input, _history, _instructions);
        var source = _runtime.Run(agentTurn);
        var promptEstimate = TokenEstimator.Estimate(agentTurn.PromptCharacters);

        if (_turn.Mode == AnswerMode.Stream)
        {
            var run = _lanes.StartStreaming(source, _turn.Header, _turn.IncludeUsage, promptEstimate, _settings.StreamBuffer, _metrics.AgentOutput);
            _run = run;
            _replyTo.Tell(new TurnStreaming(new AnswerStream(run)));
        }
        else
        {
            var run = _lanes.StartCompletion(source, _turn.Header, promptEstimate, _metrics.AgentOutput);
            _run = run;
            // Piped straight to the client: the answer does not depend on this actor staying alive.
            run.Answer.PipeTo(_replyTo, success: answer => new TurnCompleted(answer), failure: ex => new Status.Failure(ex));
        }
        _run.Outcome.PipeTo(Self);
        Timers.StartSingleTimer(TimeoutTimer, RunTimedOut.Instance, _settings.RunTimeout);
    }

    protected override void PostStop()
    {
        _metrics.RunStopped();
        if (_finished) return;
        // The session does not watch its runs: a run that stops unfinished (a crash) tells it so.
        Context.Parent.Tell(new RunStopped(_turn.TurnId), ActorRefs.NoSender);
        // Stopped before the graph ended (a crash, or the session stopping): end the graph in-band so a
        // reading client still gets an error event and [DONE]; the reader end is the client's to drop.
        _run?.Abort(new AgentRunException(ChatError.Internal));
    }

    private void Cancel()
    {
        _cancelled = true;
        _run?.Cancel();
    }

    private void OnOutcome(TurnOutcome outcome)
    {
        _finished = true;
        Timers.CancelAll();
        if (outcome.Error?.Cause is { } cause and not OperationCanceledException)
        {
            _metrics.RunFailed();
            Log.Error(cause, "Run {0} in session {1} failed", _turn.TurnId, _turn.SessionKey);
        }
        var reported = _cancelled && !outcome.Cancelled ? outcome with { Cancelled = true } : outcome;
        // No sender: an idle session would otherwise keep this (stopped) run's cell reachable, as the
        // sender of the last message it processed, for as long as the session lives.
        Context.Parent.Tell(new RunFinished(_turn.TurnId, reported), ActorRefs.NoSender);
    }

    private sealed record RunTimedOut
    {
        public static RunTimedOut Instance { get; } = new();
    }
}

/// <summary>Makes a <see cref="AgentRunActor"/> with a plain constructor call.</summary>
file sealed class Producer(Func<ActorBase> create) : IIndirectActorProducer
{
    public Type ActorType => typeof(AgentRunActor);

    public ActorBase Produce() => create();

    public void Release(ActorBase actor)
    {
    }
}

/// <summary>The session asks its run to stop because the client left.</summary>
internal sealed record CancelRun
{
    public static CancelRun Instance { get; } = new();
}

/// <summary>A run tells its session how the turn ended.</summary>
internal sealed record RunFinished(string TurnId, TurnOutcome Outcome);

/// <summary>A run stopped before it finished (it crashed): its client is failed and the session goes on.</summary>
internal sealed record RunStopped(string TurnId);
