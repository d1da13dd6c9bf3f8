using Akka.Actor;
using Akka.Event;
using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Actors.Sessions;

/// <summary>
/// How a session runs its turns, the same for both kinds of session (<see cref="SessionActor"/>, one turn
/// at a time with memory; <see cref="StatelessSessionActor"/>, side by side): it asks for a run slot when
/// runs are capped, resolves the agent and prepares the turn (a failure there fails that turn alone),
/// hands the turn to a run child (<see cref="AgentRunActor"/>, supervised by the session: a crash is
/// stopped, never restarted), and hears how it ended. It lives inside its session actor and is called
/// only from the actor's own message handling. Every method that may end a turn returns its
/// <see cref="TurnEnd"/>, so the session can go on (start its next turn, remember the reply).
/// </summary>
internal sealed class TurnRunner
{
    private readonly IActorContext _context;
    private readonly IAgentRuntimeResolver _runtimes;
    private readonly Props _runProps;
    private readonly IActorRef? _runSlots;
    private readonly IRunContextSource _contexts;
    private readonly int _maxIdleRuns;
    // The turns in progress. Most runners hold one at a time (every session with memory): that one is kept
    // in a field, more in a dictionary made when needed (a live session costs every byte here).
    private Turn? _only;
    private Dictionary<string, Turn>? _more;
    // Run actors whose last turn has ended, kept for the next turns (up to _maxIdleRuns).
    private Stack<IActorRef>? _idleRuns;
    private long _runCounter;

    /// <param name="contexts">What a turn's run needs from its session (history, instructions); it may throw, which fails that turn.</param>
    /// <param name="maxIdleRuns">Run actors kept for the next turns; 0: a run actor per turn, stopped after it.</param>
    public TurnRunner(IActorContext context, IAgentRuntimeResolver runtimes, Props runProps, IActorRef? runSlots,
        IRunContextSource contexts, int maxIdleRuns)
    {
        _context = context;
        _runtimes = runtimes;
        _runProps = runProps;
        _runSlots = runSlots;
        _contexts = contexts;
        _maxIdleRuns = maxIdleRuns;
    }

    /// <summary>A run is stopped, never restarted: half a stream cannot be replayed.</summary>
    public static readonly SupervisorStrategy StopFailedRuns = new OneForOneStrategy(Decider.From(Directive.Stop));

    /// <summary>Turns started and not yet ended (running, or waiting for a run slot).</summary>
    public int InProgress => (_only is null ? 0 : 1) + (_more?.Count ?? 0);

    private ILoggingAdapter Log => _context.GetLogger();

    /// <summary>Starts <paramref name="turn"/>, once a run slot is free when runs are capped.</summary>
    public TurnEnd? Begin(StartTurn turn, IActorRef replyTo)
    {
        var entry = new Turn(turn, replyTo);
        Add(entry);
        if (_runSlots is null) return StartRun(entry);
        _runSlots.Tell(new AcquireRunSlot(turn.TurnId), _context.Self);
        return null;
    }

    /// <summary>The turn's reader left: its run is cancelled, or its wait for a slot withdrawn.</summary>
    public TurnEnd? Cancel(CancelTurn cancel)
    {
        if (Find(cancel.TurnId) is not { } entry) return null;
        if (entry.Run is { } run)
        {
            run.Tell(cancel, _context.Self);
            return null;
        }
        Remove(entry);
        _runSlots?.Tell(new ReleaseRunSlot(cancel.TurnId), _context.Self);
        return new TurnEnd(entry.Start, null);
    }

    /// <summary>Whether <paramref name="turnId"/> is this runner's (running, or waiting for a slot).</summary>
    public bool Holds(string turnId) => Find(turnId) is not null;

    /// <summary>Handles a message of the turns' lifecycle (<see cref="ITurnRunnerMessage"/>).</summary>
    public TurnEnd? Handle(ITurnRunnerMessage message) => message switch
    {
        RunSlotGranted granted => OnSlotGranted(granted.TurnId),
        RunSlotRefused refused => OnSlotRefused(refused.TurnId),
        RunFinished finished => OnRunFinished(finished),
        RunStopped stopped => OnRunStopped(stopped.TurnId),
        _ => null,
    };

    /// <summary>The session stops: every turn in progress is failed (a run that answered already drops this second reply).</summary>
    public void FailAll()
    {
        // A turn waiting for a run slot would otherwise wait until its ask times out, and so would one whose
        // run had not received its RunTurn yet (a stopping child drops its mail). A slot held or asked for is
        // given back by the slots actor, which watches the session.
        if (_only is { } only) only.ReplyTo.Tell(TurnFailed.SessionStopped);
        if (_more is not null)
            foreach (var entry in _more.Values) entry.ReplyTo.Tell(TurnFailed.SessionStopped);
        _only = null;
        _more = null;
    }

    private TurnEnd? OnSlotGranted(string turnId)
    {
        if (Find(turnId) is { Run: null } waiting) return StartRun(waiting);
        // A slot for a turn whose reader left meanwhile goes straight back.
        _runSlots?.Tell(new ReleaseRunSlot(turnId), _context.Self);
        return null;
    }

    private TurnEnd? OnSlotRefused(string turnId)
    {
        if (Find(turnId) is not { Run: null } waiting) return null;
        Remove(waiting);
        waiting.ReplyTo.Tell(TurnFailed.Busy("Too many requests are waiting for a free agent run."));
        return new TurnEnd(waiting.Start, null);
    }

    private TurnEnd? StartRun(Turn entry)
    {
        var turn = entry.Start;
        IAgentRuntime runtime;
        RunContext context;
        try
        {
            runtime = _runtimes.Resolve(turn.Agent);
            context = _contexts.ContextFor(turn);
        }
        catch (Exception ex)
        {
            // This turn's failure alone (say, an unreadable workspace file): the session and its other turns go on.
            Log.Error(ex, "Run {0} in session {1} could not start", turn.TurnId, turn.SessionKey);
            return Fail(entry);
        }
        var run = _idleRuns is { Count: > 0 } idle ? idle.Pop() : _context.ActorOf(_runProps, $"run-{++_runCounter}");
        // Not watched: a run that stops before it finished says so itself (RunStopped), and a watch would
        // leave its bookkeeping behind in every session that ever ran a turn.
        run.Tell(new RunTurn(turn, context.History, context.Instructions, runtime, entry.ReplyTo, context.ReadInstructions), _context.Self);
        entry.Run = run;
        return null;
    }

    private TurnEnd? OnRunFinished(RunFinished finished)
    {
        if (Find(finished.TurnId) is not { Run: { } run } entry) return null;
        Remove(entry);
        // The run actor has reported its turn and waits for the next one.
        if (_maxIdleRuns > 0 && (_idleRuns ??= new Stack<IActorRef>()).Count < _maxIdleRuns) _idleRuns.Push(run);
        else _context.Stop(run);
        _runSlots?.Tell(new ReleaseRunSlot(finished.TurnId), _context.Self);
        return new TurnEnd(entry.Start, finished.Outcome);
    }

    private TurnEnd? OnRunStopped(string turnId)
    {
        if (Find(turnId) is not { Run: not null } entry) return null;
        // The run died without reporting an outcome (it crashed). Its client gets a failure; if the run had
        // already answered, this second reply is dropped by the finished ask.
        Log.Warning("Run {0} in session {1} stopped without finishing", turnId, entry.Start.SessionKey);
        return Fail(entry);
    }

    private TurnEnd Fail(Turn entry)
    {
        Remove(entry);
        entry.ReplyTo.Tell(TurnFailed.Internal);
        _runSlots?.Tell(new ReleaseRunSlot(entry.Start.TurnId), _context.Self);
        return new TurnEnd(entry.Start, null);
    }

    private Turn? Find(string turnId)
    {
        if (_only is { } only && only.Start.TurnId == turnId) return only;
        return _more is not null && _more.TryGetValue(turnId, out var entry) ? entry : null;
    }

    private void Add(Turn entry)
    {
        if (_only is null)
        {
            _only = entry;
            return;
        }
        (_more ??= new Dictionary<string, Turn>(StringComparer.Ordinal))[entry.Start.TurnId] = entry;
    }

    private void Remove(Turn entry)
    {
        if (ReferenceEquals(_only, entry)) _only = null;
        else _more?.Remove(entry.Start.TurnId);
    }

    /// <summary>A turn in progress; its run is null while it waits for a run slot.</summary>
    private sealed class Turn(StartTurn start, IActorRef replyTo)
    {
        public StartTurn Start { get; } = start;

        public IActorRef ReplyTo { get; } = replyTo;

        public IActorRef? Run { get; set; }
    }
}

/// <summary>
/// Where a <see cref="TurnRunner"/> gets what a turn's run needs: its session (an interface the session
/// implements, rather than a delegate, which would cost every live session one more object).
/// </summary>
internal interface IRunContextSource
{
    RunContext ContextFor(StartTurn turn);
}

/// <summary>What a turn's run needs from its session.</summary>
/// <param name="ReadInstructions">The run reads the agent's workspace instructions itself (<paramref name="Instructions"/> is then unused).</param>
internal sealed record RunContext(IReadOnlyList<ConversationEntry> History, string? Instructions, bool ReadInstructions)
{
    /// <summary>A stateless turn: no history, and the run reads the instructions (file reads stay off the shared session).</summary>
    public static RunContext Stateless { get; } = new([], null, ReadInstructions: true);

    /// <summary>The source of every stateless turn's context.</summary>
    public static IRunContextSource StatelessSource { get; } = new StatelessContexts();

    private sealed class StatelessContexts : IRunContextSource
    {
        public RunContext ContextFor(StartTurn turn) => Stateless;
    }
}

/// <summary>A turn of a <see cref="TurnRunner"/> ended: with its run's outcome, or with none (it failed to start, crashed, or was withdrawn).</summary>
internal sealed record TurnEnd(StartTurn Turn, TurnOutcome? Outcome);

/// <summary>The messages of a turn's lifecycle that a session hands to its <see cref="TurnRunner"/>.</summary>
internal interface ITurnRunnerMessage;
