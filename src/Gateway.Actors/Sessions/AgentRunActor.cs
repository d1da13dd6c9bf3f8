using Akka.Actor;
using Akka.Event;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.Actors.Sessions;

/// <summary>
/// Runs agent turns for its session, one at a time, as the session's supervised child: each
/// <see cref="RunTurn"/> starts the run on a lane (<see cref="RunLanes"/>), which hands the client its
/// answer (the stream's reading end at once, or the folded answer at the end) and this actor the
/// outcome, which it reports to its session (<see cref="RunFinished"/>). A run ends in-band when it
/// times out or this actor stops under it (the client reads an error event, then [DONE]), and is torn
/// down when its client leaves (<see cref="CancelTurn"/>). A run that crashes stops this actor (never
/// restarted: half a stream cannot be replayed) and its session fails that client only
/// (<see cref="RunStopped"/>). A session may send it the next turn once it has reported the last one:
/// stateless sessions keep a few idle to save an actor's start and stop per request.
/// </summary>
public sealed class AgentRunActor : UntypedActor
{
    private readonly SessionSettings _settings;
    private readonly RunLanes _lanes;
    private readonly GatewayMetrics _metrics;
    private ILoggingAdapter? _log;
    // The turn in progress (not its RunTurn: that holds the history and the client, which the run no
    // longer needs once started), its run on the lane, and its time limit; all null between turns.
    private StartTurn? _current;
    private AnswerRun? _run;
    // The scheduler's own cancelable rather than the actor's timers: the timer scheduler would make a
    // dictionary and timer entries for every turn.
    private ICancelable? _timeout;
    private bool _cancelled;
    private Listener? _listener;

    public AgentRunActor(SessionSettings settings, RunLanes lanes, GatewayMetrics metrics)
    {
        _settings = settings;
        _lanes = lanes;
        _metrics = metrics;
    }

    /// <summary>One Props serves every run of a session kind (a producer: an expression's arguments are evaluated by reflection).</summary>
    /// <param name="mailbox">The mailbox (config path) runs get; null: Akka's default.</param>
    public static Props Props(SessionSettings settings, RunLanes lanes, GatewayMetrics metrics, string? mailbox = null)
    {
        var props = Akka.Actor.Props.CreateBy(new Producer(settings, lanes, metrics));
        return mailbox is null ? props : props.WithMailbox(mailbox);
    }

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    // An untyped actor with one switch: a ReceiveActor builds its handler tables per instance.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case RunTurn start:
                Start(start);
                break;
            case TurnOutcome outcome:
                OnOutcome(outcome);
                break;
            case CancelTurn cancel when cancel.TurnId == _current?.TurnId:
                _cancelled = true;
                _run?.Cancel();
                break;
            case RunTimedOut timedOut when timedOut.TurnId == _current?.TurnId:
                Log.Warning("Run {0} in session {1} timed out after {2}", timedOut.TurnId, _current.SessionKey, _settings.RunTimeout);
                _run?.Abort(new AgentRunException(new ChatError("agent run timed out", "api_error", "timeout", 504)));
                break;
            case CancelTurn or RunTimedOut:
                // Meant for a turn this actor ran before: it has ended already.
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Start(RunTurn start)
    {
        if (_current is not null) throw new InvalidOperationException($"Run {_current.TurnId} is still in progress.");
        _current = start.Turn;
        _cancelled = false;
        _metrics.RunStarted();
        try
        {
            StartRun(start);
        }
        catch
        {
            // The session's supervisor stops this actor; PostStop tells the session, which fails the client.
            _metrics.RunFailed();
            throw;
        }
    }

    private void StartRun(RunTurn start)
    {
        var turn = start.Turn;
        var instructions = start.ReadInstructions ? AgentInstructions.Load(turn.Agent.Workspace) : start.Instructions;
        var agentTurn = new AgentTurn(turn.Agent, turn.SessionKey, turn.Input, start.History, instructions);
        var source = start.Runtime.Run(agentTurn);
        var promptEstimate = TokenEstimator.Estimate(agentTurn.PromptCharacters);

        // The lane tells the client its answer and this actor the outcome straight from the lane's thread:
        // the answer does not depend on this actor staying alive, and no thread pool hop sits in between.
        // A streamed run's client has its answer at once, below: the listener need not keep it.
        var listener = new Listener(Self, turn.Mode == AnswerMode.Stream ? ActorRefs.Nobody : start.ReplyTo,
            turn.Stateless ? null : Context.Parent, turn);
        _listener = listener;
        // A turn with memory ends its answer only once its session has remembered it.
        var commit = turn.Stateless ? null : listener;
        if (turn.Mode == AnswerMode.Stream)
        {
            var run = _lanes.StartStreaming(source, turn.Header, turn.IncludeUsage, promptEstimate,
                _metrics.AgentOutputCounter, listener, remembersReply: !turn.Stateless, commit);
            _run = run;
            start.ReplyTo.Tell(new TurnStreaming(new AnswerStream(run)));
        }
        else
        {
            _run = _lanes.StartCompletion(source, turn.Header, promptEstimate, _metrics.AgentOutputCounter, listener,
                remembersReply: !turn.Stateless, commit);
        }
        _timeout = Context.System.Scheduler.ScheduleTellOnceCancelable(_settings.RunTimeout, Self, new RunTimedOut(turn.TurnId),
            ActorRefs.NoSender);
    }

    protected override void PostStop()
    {
        _timeout?.Cancel();
        if (_current is not { } unfinished) return;
        _metrics.RunStopped();
        // The session does not watch its runs: a run that stops unfinished (a crash) tells it so.
        Context.Parent.Tell(new RunStopped(unfinished.TurnId), ActorRefs.NoSender);
        // Stopped before the graph ended (a crash, or the session stopping): end the graph in-band so a
        // reading client still gets an error event and [DONE]; the reader end is the client's to drop.
        _run?.Abort(new AgentRunException(ChatError.Internal));
        _listener?.AbandonCommit();
    }

    private void OnOutcome(TurnOutcome outcome)
    {
        if (_current is not { } finished) return;
        _timeout?.Cancel();
        _timeout = null;
        _current = null;
        _run = null;
        _listener = null;
        _metrics.RunStopped();
        if (outcome.Error?.Cause is { } cause and not OperationCanceledException)
        {
            _metrics.RunFailed();
            Log.Error(cause, "Run {0} in session {1} failed", finished.TurnId, finished.SessionKey);
        }
        var reported = _cancelled && !outcome.Cancelled ? outcome with { Cancelled = true } : outcome;
        // No sender: an idle session would otherwise keep this run's cell reachable, as the sender of
        // the last message it processed, for as long as the session lives.
        Context.Parent.Tell(new RunFinished(finished.TurnId, reported), ActorRefs.NoSender);
    }

    private sealed class Listener(IActorRef run, IActorRef client, IActorRef? session, StartTurn turn) : IRunListener, IRunCommit
    {
        private TaskCompletionSource<ChatError?>? _committing;

        public ValueTask<ChatError?> CommitAsync(TurnOutcome outcome)
        {
            // A reply that only called client tools says nothing worth remembering; their results come next turn.
            if (session is null || outcome.ReplyText.Length == 0) return new((ChatError?)null);
            // Continuations run where the session completes this: they only signal the lane.
            var done = new TaskCompletionSource<ChatError?>();
            Volatile.Write(ref _committing, done);
            session.Tell(new CommitTurn(turn.TurnId, turn.Input.Message, outcome.ReplyText, done), ActorRefs.NoSender);
            return new(done.Task);
        }

        /// <summary>The run actor stops: a commit its session never answered must not hold the answer's end for ever.</summary>
        public void AbandonCommit() => Volatile.Read(ref _committing)?.TrySetResult(SessionStoreErrors.SessionStopped);

        // No sender: called on the lane's thread, a Tell would name the lane's actor as the sender, and a
        // pooled run actor would keep it reachable as the sender of its last message.
        public void OnAnswer(ChatAnswer answer) =>
            client.Tell(answer.Completion is { } completion ? new TurnCompleted(completion) : new TurnFailed(answer.Error!.Error), ActorRefs.NoSender);

        // The lane broke, or the run was cancelled (its client has left): the error is logged with the outcome.
        public void OnAnswerFailed(Exception failure) => client.Tell(TurnFailed.Internal, ActorRefs.NoSender);

        public void OnOutcome(TurnOutcome outcome) => run.Tell(outcome, ActorRefs.NoSender);
    }

    private sealed record RunTimedOut(string TurnId);
}

/// <summary>Makes a <see cref="AgentRunActor"/> with a plain constructor call.</summary>
file sealed class Producer(SessionSettings settings, RunLanes lanes, GatewayMetrics metrics) : IIndirectActorProducer
{
    public Type ActorType => typeof(AgentRunActor);

    public ActorBase Produce() => new AgentRunActor(settings, lanes, metrics);

    public void Release(ActorBase actor)
    {
    }
}

/// <summary>A session hands its run actor the next turn, with what the agent needs to run it.</summary>
/// <param name="ReadInstructions">The run reads the agent's workspace instructions itself (<paramref name="Instructions"/> is then unused).</param>
internal sealed record RunTurn(StartTurn Turn, IReadOnlyList<ConversationEntry> History, string? Instructions, IAgentRuntime Runtime,
    IActorRef ReplyTo, bool ReadInstructions = false);

/// <summary>A run tells its session how the turn ended.</summary>
internal sealed record RunFinished(string TurnId, TurnOutcome Outcome) : ITurnRunnerMessage;

/// <summary>A run stopped before it finished (it crashed): its client is failed and the session goes on.</summary>
internal sealed record RunStopped(string TurnId) : ITurnRunnerMessage;
