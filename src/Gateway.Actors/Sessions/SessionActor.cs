using Akka.Actor;
using Akka.Event;
using Gateway.Streams.Lanes;
using Gateway.Actors.Agents;
using Gateway.Streams;

namespace Gateway.Actors.Sessions;

/// <summary>
/// One agent session: its conversation memory and its turns, run one at a time in arrival order
/// (FIFO; a later turn waits, it is not rejected, up to a bounded queue). Each turn runs as a
/// supervised child (<see cref="AgentRunActor"/>); a run that crashes is stopped and fails only its
/// own client, and the session goes on with the next turn. An idle session asks its parent to
/// passivate it: at once when stateless; otherwise it tells its parent it is idle, and the parent
/// passivates it after <see cref="SessionSettings.PassivateAfter"/> without a new turn.
/// </summary>
public sealed class SessionActor : UntypedActor
{
    // Learned from the first turn: every session shares one Props, so a session costs no Props of its own.
    private string _sessionKey = "";
    private readonly SessionSettings _settings;
    private readonly IAgentRuntimeResolver _runtimes;
    // Every run of every session is made from this one Props.
    private readonly Props _runProps;
    private readonly GatewayMetrics _metrics;
    // Null when runs across sessions are not capped (agents.defaults.maxConcurrent unset).
    private readonly IActorRef? _runSlots;
    private ILoggingAdapter? _log;
    private readonly List<ConversationEntry> _history = [];
    // Each agent's own system prompt, read from its workspace when this session first runs it. A session
    // nearly always runs one agent: that one is kept in fields, any others in a dictionary made when needed.
    private (string AgentId, string? Text)? _instructions;
    private Dictionary<string, string?>? _otherInstructions;
    // Made when a second turn has to wait: most sessions never queue (a live session costs every byte here).
    private LinkedList<(StartTurn Turn, IActorRef ReplyTo)>? _waiting;
    // The turn in progress; its Run is null while it waits for a run slot.
    private (StartTurn Turn, IActorRef ReplyTo, IActorRef? Run)? _current;
    private bool _stateless = true;
    private long _runCounter;

    public SessionActor(SessionSettings settings, IAgentRuntimeResolver runtimes,
        Props runProps, GatewayMetrics metrics, IActorRef? runSlots = null)
    {
        _settings = settings;
        _runtimes = runtimes;
        _runProps = runProps;
        _metrics = metrics;
        _runSlots = runSlots;
    }

    /// <summary>
    /// The props every session is made from (one instance serves them all; a session learns its key from
    /// its first turn). Made by a producer, not an expression: sessions start often (one per user, or per
    /// stateless request with <c>stateless-sessions = 0</c>), and an expression's arguments are evaluated
    /// by reflection.
    /// </summary>
    /// <param name="runSlots">A <see cref="RunSlotsActor"/> to ask before each run; null: runs are not capped.</param>
    /// <param name="mailbox">The mailbox (config path) of the sessions and their runs; null: Akka's default.</param>
    public static Props Props(SessionSettings settings, IAgentRuntimeResolver runtimes,
        RunLanes lanes, GatewayMetrics metrics, IActorRef? runSlots = null, string? mailbox = null)
    {
        var props = Akka.Actor.Props.CreateBy(new Producer(settings, runtimes, AgentRunActor.Props(settings, lanes, metrics, mailbox), metrics, runSlots));
        return mailbox is null ? props : props.WithMailbox(mailbox);
    }

    private bool IsIdle => _current is null && (_waiting is null || _waiting.Count == 0);

    private ILoggingAdapter Log => _log ??= Context.GetLogger();

    /// <summary>A run is stopped, never restarted: half a stream cannot be replayed.</summary>
    internal static readonly SupervisorStrategy StopFailedRuns = new OneForOneStrategy(Decider.From(Directive.Stop));

    protected override SupervisorStrategy SupervisorStrategy() => StopFailedRuns;

    // An untyped actor with one switch: a session lives long and idle, and a ReceiveActor's handler
    // tables cost every live session most of a kilobyte.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartTurn turn:
                OnStartTurn(turn);
                break;
            case LeaveTurn leave:
                OnLeaveTurn(leave);
                break;
            case RunSlotGranted granted:
                OnRunSlotGranted(granted);
                break;
            case RunFinished finished:
                OnRunFinished(finished);
                break;
            case RunStopped stopped:
                OnRunStopped(stopped.TurnId);
                break;
            case StopSession:
                if (IsIdle) Context.Stop(Self);
                else Context.Parent.Tell(PassivationCancelled.Instance);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PreStart() => _metrics.SessionStarted();

    protected override void PostStop()
    {
        _metrics.SessionStopped();
        // Anyone still waiting would otherwise wait until their ask times out. (A slot held or asked
        // for is given back by the slots actor, which watches this session.) The current turn too: its
        // run may not have received its RunTurn yet (a stopping child drops its mail); if it did, its
        // client has an answer already and this second reply is dropped by the finished ask.
        if (_current is { } current) current.ReplyTo.Tell(new Status.Failure(new SessionStoppedException(_sessionKey)));
        if (_waiting is null) return;
        foreach (var (_, replyTo) in _waiting) replyTo.Tell(new Status.Failure(new SessionStoppedException(_sessionKey)));
        _waiting.Clear();
    }

    private void OnStartTurn(StartTurn turn)
    {
        if (_sessionKey.Length == 0) _sessionKey = turn.SessionKey;
        // One turn with memory makes the session keep its memory: it then passivates only when idle.
        _stateless &= turn.Stateless;
        if (IsIdle)
        {
            Begin(turn, Sender);
            return;
        }
        _waiting ??= new LinkedList<(StartTurn Turn, IActorRef ReplyTo)>();
        if (_waiting.Count >= _settings.MaxQueuedTurns)
        {
            Sender.Tell(new Status.Failure(new SessionBusyException(_sessionKey, _settings.MaxQueuedTurns)));
            return;
        }
        _waiting.AddLast((turn, Sender));
    }

    private void OnLeaveTurn(LeaveTurn leave)
    {
        if (_current is { } current && current.Turn.TurnId == leave.TurnId)
        {
            if (current.Run is not null)
            {
                current.Run.Tell(new CancelRun(leave.TurnId));
                return;
            }
            // Still waiting for a run slot: withdraw the request.
            _runSlots?.Tell(new ReleaseRunSlot(leave.TurnId));
            _current = null;
        }
        for (var node = _waiting?.First; node is not null; node = node.Next)
        {
            if (node.Value.Turn.TurnId != leave.TurnId) continue;
            _waiting!.Remove(node);
            break;
        }
        StartNextOrIdle();
    }

    private void OnRunFinished(RunFinished finished)
    {
        if (_current is not { } current || current.Turn.TurnId != finished.TurnId) return;
        // A turn that only called client tools said nothing worth remembering; its results come next turn.
        if (finished.Outcome is { Succeeded: true, ReplyText.Length: > 0 }) Remember(current.Turn.Input.Message, finished.Outcome.ReplyText);
        Context.Stop(current.Run!);
        _runSlots?.Tell(new ReleaseRunSlot(finished.TurnId));
        _current = null;
        StartNextOrIdle();
    }

    private void OnRunStopped(string turnId)
    {
        if (_current is not { Run: not null } current || current.Turn.TurnId != turnId) return;
        // The run died without reporting an outcome (it crashed). Its client gets a failure; if the
        // run had already answered, this second reply is dropped by the finished ask.
        Log.Warning("Run {0} in session {1} stopped without finishing", current.Turn.TurnId, _sessionKey);
        current.ReplyTo.Tell(new Status.Failure(new AgentRunException(ChatError.Internal)));
        _runSlots?.Tell(new ReleaseRunSlot(current.Turn.TurnId));
        _current = null;
        StartNextOrIdle();
    }

    private void StartNextOrIdle()
    {
        if (_current is null && _waiting?.First is { } next)
        {
            _waiting.RemoveFirst();
            Begin(next.Value.Turn, next.Value.ReplyTo);
            return;
        }
        if (!IsIdle) return;
        if (_stateless) Context.Parent.Tell(new Passivate(StopSession.Instance));
        // No timer of its own: one sweep in the parent serves every idle session (a timer here cost each
        // live session a few hundred bytes).
        else Context.Parent.Tell(SessionIdle.Instance);
    }

    private void Begin(StartTurn turn, IActorRef replyTo)
    {
        if (_runSlots is null)
        {
            StartRun(turn, replyTo);
            return;
        }
        // Runs across sessions are capped: wait for a slot (in arrival order) before starting.
        _current = (turn, replyTo, null);
        _runSlots.Tell(new AcquireRunSlot(turn.TurnId));
    }

    private void OnRunSlotGranted(RunSlotGranted granted)
    {
        if (_current is { Run: null } current && current.Turn.TurnId == granted.TurnId) StartRun(current.Turn, current.ReplyTo);
        // A slot for a turn whose client left meanwhile goes straight back.
        else _runSlots?.Tell(new ReleaseRunSlot(granted.TurnId));
    }

    private void StartRun(StartTurn turn, IActorRef replyTo)
    {
        IAgentRuntime runtime;
        string? instructions;
        try
        {
            runtime = _runtimes.Resolve(turn.Agent);
            instructions = InstructionsFor(turn.Agent);
        }
        catch (Exception ex)
        {
            // This turn's failure alone (say, an unreadable workspace file): the session and its memory go on.
            Log.Error(ex, "Run {0} in session {1} could not start", turn.TurnId, _sessionKey);
            replyTo.Tell(new Status.Failure(new AgentRunException(ChatError.Internal)));
            _runSlots?.Tell(new ReleaseRunSlot(turn.TurnId));
            _current = null;
            StartNextOrIdle();
            return;
        }
        // A run actor per turn, stopped after it: an idle session keeps no run actor.
        var run = Context.ActorOf(_runProps, $"run-{++_runCounter}");
        run.Tell(new RunTurn(turn, _history.ToArray(), instructions, runtime, replyTo));
        // Not watched: a run that stops before it finished says so itself (RunStopped), and a watch would
        // leave its bookkeeping behind in every session that ever ran a turn.
        _current = (turn, replyTo, run);
    }

    private string? InstructionsFor(AgentDefinition agent)
    {
        if (_instructions is { } known && known.AgentId == agent.Id) return known.Text;
        if (_instructions is null)
        {
            var text = AgentInstructions.Load(agent.Workspace);
            _instructions = (agent.Id, text);
            return text;
        }
        _otherInstructions ??= new Dictionary<string, string?>(StringComparer.Ordinal);
        if (!_otherInstructions.TryGetValue(agent.Id, out var other))
            _otherInstructions[agent.Id] = other = AgentInstructions.Load(agent.Workspace);
        return other;
    }

    private void Remember(string userText, string assistantText)
    {
        _history.Add(new ConversationEntry(ConversationRole.User, userText));
        _history.Add(new ConversationEntry(ConversationRole.Assistant, assistantText));
        var excess = _history.Count - _settings.MaxHistoryEntries;
        if (excess > 0) _history.RemoveRange(0, excess);
    }
}

/// <summary>Makes a <see cref="SessionActor"/> with a plain constructor call.</summary>
file sealed class Producer(SessionSettings settings, IAgentRuntimeResolver runtimes,
    Props runProps, GatewayMetrics metrics, IActorRef? runSlots) : IIndirectActorProducer
{
    public Type ActorType => typeof(SessionActor);

    public ActorBase Produce() => new SessionActor(settings, runtimes, runProps, metrics, runSlots);

    public void Release(ActorBase actor)
    {
    }
}

/// <summary>The session stopped before this turn could run.</summary>
public sealed class SessionStoppedException(string sessionKey) : Exception($"Session '{sessionKey}' stopped.");
