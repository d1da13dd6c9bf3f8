using Akka.Actor;
using Gateway.Streams.Lanes;
using Gateway.Agents;

namespace Gateway.Actors.Sessions;

/// <summary>
/// One agent session: its conversation memory and its turns, run one at a time in arrival order
/// (FIFO; a later turn waits, it is not rejected, up to a bounded queue). Each turn runs as a
/// supervised child (<see cref="AgentRunActor"/>); a run that crashes is stopped and fails only its
/// own client, and the session goes on with the next turn. An idle session asks its parent to
/// passivate it: at once when stateless; otherwise it tells its parent it is idle, and the parent
/// passivates it after <see cref="SessionSettings.PassivateAfter"/> without a new turn.
/// </summary>
public sealed class SessionActor : UntypedActor, IRunContextSource
{
    // Learned from the first turn: every session shares one Props, so a session costs no Props of its own.
    private string _sessionKey = "";
    private readonly SessionSettings _settings;
    private readonly GatewayMetrics _metrics;
    private readonly TurnRunner _runner;
    private readonly List<ConversationEntry> _history = [];
    // Each agent's own system prompt, read from its workspace when this session first runs it. A session
    // nearly always runs one agent: that one is kept in fields, any others in a dictionary made when needed.
    private (string AgentId, string? Text)? _instructions;
    private Dictionary<string, string?>? _otherInstructions;
    // Made when a second turn has to wait: most sessions never queue (a live session costs every byte here).
    private LinkedList<(StartTurn Turn, IActorRef ReplyTo)>? _waiting;
    private bool _stateless = true;

    public SessionActor(SessionSettings settings, IAgentRuntimeResolver runtimes,
        Props runProps, GatewayMetrics metrics, IActorRef? runSlots = null)
    {
        _settings = settings;
        _metrics = metrics;
        // A run actor per turn, stopped after it: an idle session keeps no run actor.
        _runner = new TurnRunner(Context, runtimes, runProps, runSlots, this, maxIdleRuns: 0);
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

    private bool IsIdle => _runner.InProgress == 0 && (_waiting is null || _waiting.Count == 0);

    protected override SupervisorStrategy SupervisorStrategy() => TurnRunner.StopFailedRuns;

    // An untyped actor with one switch: a session lives long and idle, and a ReceiveActor's handler
    // tables cost every live session most of a kilobyte.
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartTurn turn:
                OnStartTurn(turn);
                break;
            case CancelTurn cancel:
                OnCancelTurn(cancel);
                break;
            case ITurnRunnerMessage lifecycle:
                if (_runner.Handle(lifecycle) is { } ended) OnTurnEnded(ended);
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
        // Anyone still waiting would otherwise wait until their ask times out.
        _runner.FailAll();
        if (_waiting is null) return;
        foreach (var (_, replyTo) in _waiting) replyTo.Tell(TurnFailed.SessionStopped);
        _waiting.Clear();
    }

    private void OnStartTurn(StartTurn turn)
    {
        if (_sessionKey.Length == 0) _sessionKey = turn.SessionKey;
        // One turn with memory makes the session keep its memory: it then passivates only when idle.
        _stateless &= turn.Stateless;
        if (IsIdle)
        {
            if (_runner.Begin(turn, Sender) is not null) StartNextOrIdle();
            return;
        }
        _waiting ??= new LinkedList<(StartTurn Turn, IActorRef ReplyTo)>();
        if (_waiting.Count >= _settings.MaxQueuedTurns)
        {
            Sender.Tell(TurnFailed.Busy($"Session '{_sessionKey}' already has {_settings.MaxQueuedTurns} turns waiting."));
            return;
        }
        _waiting.AddLast((turn, Sender));
    }

    private void OnCancelTurn(CancelTurn cancel)
    {
        if (_runner.Holds(cancel.TurnId))
        {
            if (_runner.Cancel(cancel) is { } ended) OnTurnEnded(ended);
            return;
        }
        for (var node = _waiting?.First; node is not null; node = node.Next)
        {
            if (node.Value.Turn.TurnId != cancel.TurnId) continue;
            _waiting!.Remove(node);
            break;
        }
        StartNextOrIdle();
    }

    private void OnTurnEnded(TurnEnd ended)
    {
        // A turn that only called client tools said nothing worth remembering; its results come next turn.
        if (ended.Outcome is { Succeeded: true, ReplyText.Length: > 0 } outcome) Remember(ended.Turn.Input.Message, outcome.ReplyText);
        StartNextOrIdle();
    }

    private void StartNextOrIdle()
    {
        // A turn that fails to start ends at once: the next one is tried in the same pass.
        while (_runner.InProgress == 0 && _waiting?.First is { } next)
        {
            _waiting.RemoveFirst();
            // An ended turn here never ran, so it has nothing to remember.
            if (_runner.Begin(next.Value.Turn, next.Value.ReplyTo) is null) return;
        }
        if (!IsIdle) return;
        if (_stateless) Context.Parent.Tell(new Passivate(StopSession.Instance));
        // No timer of its own: one sweep in the parent serves every idle session (a timer here cost each
        // live session a few hundred bytes).
        else Context.Parent.Tell(SessionIdle.Instance);
    }

    RunContext IRunContextSource.ContextFor(StartTurn turn) => new(_history.ToArray(), InstructionsFor(turn.Agent), ReadInstructions: false);

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
