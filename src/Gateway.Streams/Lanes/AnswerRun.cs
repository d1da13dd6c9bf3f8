using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// One agent run on a lane: what the agent says, how its answer is shaped, and where it ends. Made
/// by <see cref="RunLanes"/>; the lane's stages use the internal members, on the lane's own thread.
/// <see cref="Abort"/> and <see cref="Cancel"/> are safe from any thread, any number of times.
/// </summary>
public abstract class AnswerRun
{
    // The outcome as it happened, and a task for it made only when someone asks (the listener is how the
    // gateway hears it): a completion source per run would otherwise live as long as the run.
    private TurnOutcome? _result;
    private TaskCompletionSource<TurnOutcome>? _outcome;
    private volatile bool _cancelRequested;

    private protected AnswerRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        Action<int>? onText, IRunListener? listener, bool remembersReply)
    {
        RemembersReply = remembersReply;
        Agent = agent;
        Header = header;
        IncludeUsage = includeUsage;
        PromptTokenEstimate = promptTokenEstimate;
        OnText = onText;
        Listener = listener;
    }

    private protected IRunListener? Listener { get; }

    /// <summary>How the turn ended (reply text, usage, error, or cancelled), as a task (for callers without a listener).</summary>
    public Task<TurnOutcome> Outcome
    {
        get
        {
            if (Volatile.Read(ref _outcome) is { } made) return made.Task;
            var fresh = new TaskCompletionSource<TurnOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            var outcome = Interlocked.CompareExchange(ref _outcome, fresh, null) ?? fresh;
            // After the exchange (a full fence), as SetOutcome reads the task after setting the result: one of the two sees the other.
            if (Volatile.Read(ref _result) is { } result) outcome.TrySetResult(result);
            return outcome.Task;
        }
    }

    /// <summary>Ends the run in-band: the answer carries the error (an error event, then [DONE]).</summary>
    public void Abort(Exception cause) => Lane?.Abort(this, cause);

    /// <summary>The reader left: the agent is stopped, nothing more is written, the outcome says cancelled.</summary>
    public void Cancel()
    {
        // Noted on the run first: the answer end may hear the signal before the run's first part, and then
        // finds the note when the run opens there.
        _cancelRequested = true;
        if (!AnswerEnded) Lane?.Cancel(this);
    }

    /// <summary>Whether <see cref="Cancel"/> was called.</summary>
    internal bool CancelRequested => _cancelRequested;

    /// <summary>The answer end is done with the run (a cancel would change nothing).</summary>
    private protected virtual bool AnswerEnded => false;

    internal IAsyncEnumerable<AgentEvent> Agent { get; }

    internal ChatAnswerHeader Header { get; }

    internal bool IncludeUsage { get; }

    internal int PromptTokenEstimate { get; }

    internal Action<int>? OnText { get; }

    /// <summary>Whether <see cref="TurnOutcome.ReplyText"/> carries the reply (a session that remembers needs it); else it is empty.</summary>
    internal bool RemembersReply { get; }

    internal Lane? Lane { get; set; }

    internal void SetOutcome(TurnOutcome outcome)
    {
        if (Interlocked.CompareExchange(ref _result, outcome, null) is not null) return;
        Volatile.Read(ref _outcome)?.TrySetResult(outcome);
        Listener?.OnOutcome(outcome);
    }

    /// <summary>The lane's answer end has opened this run; the run may wake it (<see cref="AnswerLaneSink.Control.Wake"/>).</summary>
    internal virtual void Opened(AnswerLaneSink.Control answerEnd)
    {
    }

    /// <summary>
    /// Hands a part to the run's end; false when the end has no room now: it then wakes the answer end
    /// once it may have, and the part is offered again.
    /// </summary>
    internal abstract bool TryDeliver(ChatStreamPart part);

    /// <summary>The run woke its answer end: on the lane's thread, before a waiting part is offered again.</summary>
    internal virtual void OnWake()
    {
    }

    /// <summary>The reader left or the lane broke: nothing more will be delivered.</summary>
    internal abstract void Close(Exception? failure);
}

/// <summary>A folded answer: one <c>chat.completion</c>, or the error the run ended with.</summary>
public sealed class CompletionRun : AnswerRun
{
    private readonly TaskCompletionSource<ChatAnswer> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ChatAnswerEnds.CompletionFold _fold;

    internal CompletionRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, int promptTokenEstimate, Action<int>? onText,
        IRunListener? listener = null, bool remembersReply = true)
        : base(agent, header, includeUsage: true, promptTokenEstimate, onText, listener, remembersReply) =>
        _fold = new ChatAnswerEnds.CompletionFold(header);

    public Task<ChatAnswer> Answer => _answer.Task;

    internal override bool TryDeliver(ChatStreamPart part)
    {
        if (_fold.Add(part) is { } answer && _answer.TrySetResult(answer)) Listener?.OnAnswer(answer);
        return true;
    }

    internal override void Close(Exception? failure)
    {
        var failed = failure is null ? _answer.TrySetCanceled() : _answer.TrySetException(failure);
        if (failed) Listener?.OnAnswerFailed(failure ?? new TaskCanceledException(_answer.Task));
    }
}

/// <summary>
/// Told how a run ends, on the lane's own thread, as it happens: a listener only hands the news on
/// (an actor's Tell) and never blocks. Awaiting <see cref="AnswerRun.Outcome"/> or
/// <see cref="CompletionRun.Answer"/> gives the same news one thread pool hop later.
/// </summary>
public interface IRunListener
{
    /// <summary>A completion run's answer.</summary>
    void OnAnswer(ChatAnswer answer);

    /// <summary>A completion run ended without an answer: its lane broke (a failure) or its reader left (cancelled).</summary>
    void OnAnswerFailed(Exception failure);

    /// <summary>How the run ended (every run, once).</summary>
    void OnOutcome(TurnOutcome outcome);
}
