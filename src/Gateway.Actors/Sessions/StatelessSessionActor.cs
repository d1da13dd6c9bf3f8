using Akka.Actor;
using Akka.Event;
using Gateway.Actors.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;

namespace Gateway.Actors.Sessions;

/// <summary>
/// The session stateless turns run in (a request with neither a session key nor a <c>user</c>). Such
/// a turn remembers nothing and shares nothing, so there is no order to keep between turns: they run
/// side by side, each as its own supervised run (<see cref="AgentRunActor"/>), and the session lives
/// on between them. A session per stateless request, started and stopped with it, cost a request two
/// actor lifecycles and a passivation round trip; the router keeps a few of these instead
/// (<see cref="SessionKeyExtractor"/> spreads stateless turns over them by session key).
/// A run that crashes fails only its own client, as in <see cref="SessionActor"/>. Run actors whose turn
/// has ended are kept (a few) for the next turns, which saves most requests an actor's start and stop.
/// </summary>
public sealed class StatelessSessionActor : UntypedActor
{
    private readonly IAgentRuntimeResolver _runtimes;
    private readonly Props _runProps;
    private readonly IActorRef? _runSlots;
    // The turns in progress by turn id; a turn's Run is null while it waits for a run slot.
    private readonly Dictionary<string, (StartTurn Turn, IActorRef ReplyTo, IActorRef? Run)> _turns = new(StringComparer.Ordinal);
    // Run actors whose last turn has ended, kept for the next turns (up to MaxIdleRuns).
    private readonly Stack<IActorRef> _idleRuns = new();
    private ILoggingAdapter? _log;
    private long _runCounter;

    /// <summary>Idle run actors kept: enough for a burst of short requests, few enough to cost nothing worth counting.</summary>
    internal const int MaxIdleRuns = 32;

    public StatelessSessionActor(IAgentRuntimeResolver runtimes, Props runProps, IActorRef? runSlots = null)
    {
        _runtimes = runtimes;
        _runProps = runProps;
        _runSlots = runSlots;
    }

    /// <param name="runSlots">A <see cref="RunSlotsActor"/> to ask before each run; null: runs are not capped.</param>
    /// <param name="mailbox">The mailbox (config path) of the session and its runs; null: Akka's default.</param>
    public static Props Props(SessionSettings settings, IAgentRuntimeResolver runtimes, RunLanes lanes, GatewayMetrics metrics,
        IActorRef? runSlots = null, string? mailbox = null)
    {
        var runProps = AgentRunActor.Props(settings, lanes, metrics, mailbox);
        var props = Akka.Actor.Props.Create(() => new StatelessSessionActor(runtimes, runProps, runSlots));
        return mailbox is null ? props : props.WithMailbox(mailbox);
    }

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    protected override SupervisorStrategy SupervisorStrategy() => SessionActor.StopFailedRuns;

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartTurn turn:
                OnStartTurn(turn);
                break;
            case LeaveTurn leave:
                OnLeaveTurn(leave.TurnId);
                break;
            case RunSlotGranted granted:
                if (_turns.TryGetValue(granted.TurnId, out var waiting) && waiting.Run is null) StartRun(waiting.Turn, waiting.ReplyTo);
                // A slot for a turn whose client left meanwhile goes straight back.
                else _runSlots?.Tell(new ReleaseRunSlot(granted.TurnId));
                break;
            case RunFinished finished:
                if (!_turns.Remove(finished.TurnId, out var done)) return;
                // The run actor has reported its turn and waits for the next one.
                if (_idleRuns.Count < MaxIdleRuns) _idleRuns.Push(done.Run!);
                else Context.Stop(done.Run!);
                _runSlots?.Tell(new ReleaseRunSlot(finished.TurnId));
                break;
            case RunStopped stopped:
                OnRunStopped(stopped.TurnId);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop()
    {
        // Turns still waiting for a run slot would otherwise wait until their ask times out.
        foreach (var (turn, replyTo, run) in _turns.Values)
            if (run is null) replyTo.Tell(new Status.Failure(new SessionStoppedException(turn.SessionKey)));
    }

    private void OnStartTurn(StartTurn turn)
    {
        if (_runSlots is null)
        {
            StartRun(turn, Sender);
            return;
        }
        _turns[turn.TurnId] = (turn, Sender, null);
        _runSlots.Tell(new AcquireRunSlot(turn.TurnId));
    }

    private void OnLeaveTurn(string turnId)
    {
        if (!_turns.TryGetValue(turnId, out var turn)) return;
        if (turn.Run is not null)
        {
            turn.Run.Tell(new CancelRun(turnId));
            return;
        }
        // Still waiting for a run slot: withdraw the request.
        _runSlots?.Tell(new ReleaseRunSlot(turnId));
        _turns.Remove(turnId);
    }

    private void OnRunStopped(string turnId)
    {
        if (!_turns.TryGetValue(turnId, out var turn) || turn.Run is null) return;
        _turns.Remove(turnId);
        Log.Warning("Stateless run {0} stopped without finishing", turnId);
        turn.ReplyTo.Tell(new Status.Failure(new AgentRunException(ChatError.Internal)));
        _runSlots?.Tell(new ReleaseRunSlot(turnId));
    }

    private void StartRun(StartTurn turn, IActorRef replyTo)
    {
        IAgentRuntime runtime;
        string? instructions;
        try
        {
            runtime = _runtimes.Resolve(turn.Agent);
            // Read per turn, as the session a stateless request used to get of its own read it: an edit
            // to the agent's workspace applies to the next request.
            instructions = AgentInstructions.Load(turn.Agent.Workspace);
        }
        catch (Exception ex)
        {
            // This turn's failure alone (say, an unreadable workspace file): the turns beside it go on.
            Log.Error(ex, "Stateless run {0} could not start", turn.TurnId);
            _turns.Remove(turn.TurnId);
            replyTo.Tell(new Status.Failure(new AgentRunException(ChatError.Internal)));
            _runSlots?.Tell(new ReleaseRunSlot(turn.TurnId));
            return;
        }
        var run = _idleRuns.Count > 0 ? _idleRuns.Pop() : Context.ActorOf(_runProps, $"run-{++_runCounter}");
        run.Tell(new RunTurn(turn, [], instructions, runtime, replyTo));
        _turns[turn.TurnId] = (turn, replyTo, run);
    }
}
