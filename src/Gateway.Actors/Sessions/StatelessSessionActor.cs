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
    /// <param name="runMailbox">The mailbox (config path) of its runs; null: Akka's default. The session
    /// itself keeps Akka's default: it is busy, shared, and lives as long as the gateway.</param>
    public static Props Props(SessionSettings settings, IAgentRuntimeResolver runtimes, RunLanes lanes, GatewayMetrics metrics,
        IActorRef? runSlots = null, string? runMailbox = null)
    {
        var runProps = AgentRunActor.Props(settings, lanes, metrics, runMailbox);
        return Akka.Actor.Props.Create(() => new StatelessSessionActor(runtimes, runProps, runSlots));
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
        // Every turn in flight: one waiting for a run slot would otherwise wait until its ask times out,
        // and so would one whose run had not received its RunTurn yet (a stopping child drops its mail).
        // A client that has its answer already drops this second reply (the ask has finished).
        foreach (var (turn, replyTo, _) in _turns.Values) replyTo.Tell(new Status.Failure(new SessionStoppedException(turn.SessionKey)));
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
        try
        {
            runtime = _runtimes.Resolve(turn.Agent);
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
        // The run reads the agent's workspace instructions itself, per turn (as the session a stateless
        // request once had of its own did): file reads stay off this shared actor, and one that fails
        // fails that run alone.
        run.Tell(new RunTurn(turn, [], null, runtime, replyTo, ReadInstructions: true));
        _turns[turn.TurnId] = (turn, replyTo, run);
    }
}
