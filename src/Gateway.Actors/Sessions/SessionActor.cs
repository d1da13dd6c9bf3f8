using Akka.Actor;
using Gateway.Streams.Lanes;
using Gateway.Agents;

namespace Gateway.Actors.Sessions;

/// <summary>
/// One agent session: its conversation memory and its turns, run one at a time in arrival order
/// (FIFO; a later turn waits, it is not rejected, up to a bounded queue). Each turn runs as a
/// supervised child (<see cref="AgentRunActor"/>); a run that crashes is stopped and fails only its
/// own client, and the session goes on with the next turn. A turn that succeeded is remembered before
/// its answer ends (<see cref="CommitTurn"/>): in memory, or, for a durable session
/// (<see cref="SessionSettings.Journal"/>), once its journal child (<see cref="SessionJournalActor"/>)
/// has written it; such a session recovers its history from that journal before its first turn runs.
/// An idle session asks its parent to passivate it: at once when stateless; otherwise it tells its
/// parent it is idle, and the parent passivates it after <see cref="SessionSettings.PassivateAfter"/>
/// without a new turn.
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
    // A durable session's journal child: null until a turn with memory needs it (and again after it failed).
    private IActorRef? _journal;
    private bool _historyRecovered;
    // The turn being written to the journal: its answer ends when this completes.
    private TaskCompletionSource<ChatError?>? _committing;
    private int _recordedSinceSnapshot;
    private bool _snapshotting;
    // Who asked to forget this session, answered in order once the journal has deleted its history.
    private Queue<IActorRef>? _forgetting;
    // Who asked for a retention check, answered once the journal has recovered (and deleted an expired history).
    private List<IActorRef>? _checkingRetention;

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

    private bool IsIdle => _runner.InProgress == 0 && (_waiting is null || _waiting.Count == 0) && _committing is null
        && _forgetting is not { Count: > 0 } && _checkingRetention is not { Count: > 0 } && !_snapshotting;

    private bool Durable => _settings.Journal is not null;

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
            case CommitTurn commit:
                OnCommitTurn(commit);
                break;
            case TurnRecorded recorded:
                OnTurnRecorded(recorded);
                break;
            case HistorySaved when Sender.Equals(_journal):
                _snapshotting = false;
                StartNextOrIdle();
                break;
            case TurnNotRecorded when Sender.Equals(_journal):
                _committing?.TrySetResult(ChatError.Internal);
                _committing = null;
                break;
            case HistoryRecovered recovered:
                OnHistoryRecovered(recovered);
                break;
            case Terminated terminated when terminated.ActorRef.Equals(_journal):
                OnJournalStopped();
                break;
            case ForgetSession forget:
                OnForget(forget);
                break;
            case HistoryForgotten forgotten:
                OnForgotten(forgotten);
                break;
            case CheckRetention check:
                OnCheckRetention(check);
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
        _committing?.TrySetResult(SessionStoreErrors.SessionStopped);
        FailForgets();
        AnswerRetentionChecks();
        _runner.FailAll();
        if (_waiting is null) return;
        foreach (var (_, replyTo) in _waiting) replyTo.Tell(TurnFailed.SessionStopped);
        _waiting.Clear();
    }

    private void OnStartTurn(StartTurn turn)
    {
        LearnKey(turn.SessionKey);
        // One turn with memory makes the session keep its memory: it then passivates only when idle.
        _stateless &= turn.Stateless;
        if (IsIdle && HistoryReady(turn))
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

    // The turn was remembered (or not) when it committed, before its answer ended.
    private void OnTurnEnded(TurnEnd ended) => StartNextOrIdle();

    /// <summary>
    /// Whether the history is there for <paramref name="turn"/> to run with: a durable session's first turn with
    /// memory starts its journal, and that turn (and those behind it) wait until the history is recovered.
    /// </summary>
    private bool HistoryReady(StartTurn turn)
    {
        if (!Durable || turn.Stateless || _historyRecovered) return true;
        StartJournal();
        return false;
    }

    private void StartJournal()
    {
        if (_journal is not null) return;
        _journal = Context.ActorOf(SessionJournalActor.Props(_sessionKey, _settings.MaxHistoryEntries, _settings.Journal!), "journal");
        Context.Watch(_journal);
    }

    private void OnHistoryRecovered(HistoryRecovered recovered)
    {
        if (!Sender.Equals(_journal)) return;
        _history.Clear();
        // A forget asked for while the journal recovered is done after this: the session starts empty already.
        if (_forgetting is not { Count: > 0 }) _history.AddRange(recovered.History);
        _recordedSinceSnapshot = recovered.EventsSinceSnapshot;
        _historyRecovered = true;
        AnswerRetentionChecks();
        StartNextOrIdle();
    }

    private void OnJournalStopped()
    {
        // Akka.Persistence stops a journal whose write or recovery failed. The turn being written fails; a turn
        // waiting for the history fails too (the store is down); the next turn starts a fresh journal, whose
        // recovery is the truth about what was kept.
        _journal = null;
        _snapshotting = false;
        _committing?.TrySetResult(SessionStoreErrors.Unavailable);
        _committing = null;
        FailForgets();
        AnswerRetentionChecks();
        if (!_historyRecovered && _runner.InProgress == 0 && _waiting is not null)
        {
            foreach (var (_, replyTo) in _waiting) replyTo.Tell(new TurnFailed(SessionStoreErrors.Unavailable));
            _waiting.Clear();
        }
        _historyRecovered = false;
        StartNextOrIdle();
    }

    private void OnCommitTurn(CommitTurn commit)
    {
        if (!Durable)
        {
            Remember(commit.UserText, commit.ReplyText);
            commit.Done.TrySetResult(null);
            return;
        }
        if (_journal is null || !_historyRecovered || _committing is not null)
        {
            commit.Done.TrySetResult(SessionStoreErrors.Unavailable);
            return;
        }
        _committing = commit.Done;
        _journal.Tell(new RecordTurn(commit.UserText, commit.ReplyText));
    }

    private void OnTurnRecorded(TurnRecorded recorded)
    {
        if (!Sender.Equals(_journal)) return;
        Remember(recorded.UserText, recorded.ReplyText);
        _committing?.TrySetResult(null);
        _committing = null;
        if (++_recordedSinceSnapshot < _settings.Journal!.SnapshotEvery) return;
        _recordedSinceSnapshot = 0;
        // Not passivated until it is saved: a journal stopped meanwhile would never delete what the snapshot covers.
        _snapshotting = true;
        _journal!.Tell(new SaveHistory(_history.ToArray()));
    }

    private void OnForget(ForgetSession forget)
    {
        LearnKey(forget.SessionKey);
        _history.Clear();
        _recordedSinceSnapshot = 0;
        if (!Durable)
        {
            Sender.Tell(new HistoryForgotten(Deleted: true));
            StartNextOrIdle();
            return;
        }
        StartJournal();
        // A journal still recovering handles this once it has (Akka.Persistence holds commands until then).
        (_forgetting ??= new Queue<IActorRef>()).Enqueue(Sender);
        _journal.Tell(ForgetHistory.Instance);
    }

    private void OnCheckRetention(CheckRetention check)
    {
        LearnKey(check.SessionKey);
        // A live session has been active since it recovered (it passivates long before any retention runs out).
        if (!Durable || _historyRecovered)
        {
            Sender.Tell(RetentionChecked.Instance);
            StartNextOrIdle();
            return;
        }
        StartJournal();
        (_checkingRetention ??= []).Add(Sender);
    }

    private void AnswerRetentionChecks()
    {
        if (_checkingRetention is not { Count: > 0 } waiting) return;
        foreach (var asker in waiting) asker.Tell(RetentionChecked.Instance);
        waiting.Clear();
    }

    private void OnForgotten(HistoryForgotten forgotten)
    {
        if (!Sender.Equals(_journal) || _forgetting is not { Count: > 0 }) return;
        _forgetting.Dequeue().Tell(forgotten);
        StartNextOrIdle();
    }

    private void StartNextOrIdle()
    {
        // A turn that fails to start ends at once: the next one is tried in the same pass.
        while (_runner.InProgress == 0 && _waiting?.First is { } next && HistoryReady(next.Value.Turn))
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

    private void Remember(string userText, string assistantText) =>
        SessionJournalActor.Append(_history, userText, assistantText, _settings.MaxHistoryEntries);

    // Learned from the first message: every session shares one Props.
    private void LearnKey(string sessionKey)
    {
        if (_sessionKey.Length == 0) _sessionKey = sessionKey;
    }

    /// <summary>The journal is gone (or the session stops): whoever waits for a forget hears it did not happen.</summary>
    private void FailForgets()
    {
        while (_forgetting is { Count: > 0 }) _forgetting.Dequeue().Tell(new HistoryForgotten(Deleted: false));
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
