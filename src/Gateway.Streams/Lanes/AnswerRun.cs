using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// One agent run: what the agent says, how its answer is shaped, and where the answer goes (its end:
/// the response, or one folded completion). It flows down a lane's graph and knows nothing of lanes.
/// Control reaches it from above: <see cref="Cancel"/> (the reader left) and <see cref="Abort"/> (end
/// the answer in-band with an error) stop it through <see cref="Stopping"/>, the token the agent reads
/// with and the lane listens to. Both are safe from any thread, any number of times; the first wins.
/// </summary>
public abstract class AnswerRun
{
    // The stop's cause: CancelCause for a cancel, else the abort's exception.
    private static readonly object CancelCause = new();

    private readonly CancellationTokenSource _stopping = new();
    private object? _stopCause;
    // The outcome as it happened, and a task for it made only when someone asks (the listener is how the
    // gateway hears it): a completion source per run would otherwise live as long as the run.
    private TurnOutcome? _result;
    private TaskCompletionSource<TurnOutcome>? _outcome;

    private protected AnswerRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        Action<int>? onText, IRunListener? listener, bool remembersReply, IRunCommit? commit)
    {
        RemembersReply = remembersReply;
        Commit = commit;
        Agent = agent;
        Header = header;
        IncludeUsage = includeUsage;
        PromptTokenEstimate = promptTokenEstimate;
        OnText = onText;
        Listener = listener;
    }

    private protected IRunListener? Listener { get; }

    /// <summary>What the answer's end waits for (the session recording the turn); null: it ends at once.</summary>
    internal IRunCommit? Commit { get; }

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
    public void Abort(Exception cause) => Stop(cause);

    /// <summary>The reader left: the agent is stopped, nothing more is written, the outcome says cancelled.</summary>
    public void Cancel() => Stop(CancelCause);

    private void Stop(object cause)
    {
        // After its end the run has nothing to stop: a reader that says it leaves once it has read all costs nothing.
        if (AnswerEnded || Interlocked.CompareExchange(ref _stopCause, cause, null) is not null) return;
        _stopping.Cancel();
    }

    /// <summary>Cancelled when the run is stopped (<see cref="Cancel"/> or <see cref="Abort"/>); the agent reads with it.</summary>
    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Whether <see cref="Cancel"/> stopped the run.</summary>
    internal bool Cancelled => ReferenceEquals(Volatile.Read(ref _stopCause), CancelCause);

    /// <summary>What <see cref="Abort"/> stopped the run with; null when it was not aborted.</summary>
    internal Exception? AbortCause => Volatile.Read(ref _stopCause) as Exception;

    /// <summary>The run's end is done with the answer: stopping it would change nothing.</summary>
    private protected abstract bool AnswerEnded { get; }

    internal IAsyncEnumerable<AgentEvent> Agent { get; }

    /// <summary>What every chunk of the answer shares (its id, creation time and model).</summary>
    public ChatAnswerHeader Header { get; }

    internal bool IncludeUsage { get; }

    internal int PromptTokenEstimate { get; }

    internal Action<int>? OnText { get; }

    /// <summary>Whether <see cref="TurnOutcome.ReplyText"/> carries the reply (a session that remembers needs it); else it is empty.</summary>
    internal bool RemembersReply { get; }

    /// <summary>Whether the end sends in bursts (<see cref="FlushAsync"/>); a folded answer does not.</summary>
    internal virtual bool Flushes => false;

    internal void SetOutcome(TurnOutcome outcome)
    {
        if (Interlocked.CompareExchange(ref _result, outcome, null) is not null) return;
        Volatile.Read(ref _outcome)?.TrySetResult(outcome);
        Listener?.OnOutcome(outcome);
    }

    /// <summary>Hands a part to the run's end; completes when the end has taken it, with false when its reader has gone.</summary>
    internal abstract ValueTask<bool> DeliverAsync(ChatStreamPart part);

    /// <summary>Sends the parts delivered so far (a burst); completes when the reader has room again, false when it has gone.</summary>
    internal virtual ValueTask<bool> FlushAsync() => new(true);

    /// <summary>Nothing more will be delivered: the run was cancelled (null) or its lane broke.</summary>
    internal abstract void Close(Exception? failure);
}

/// <summary>A folded answer: one <c>chat.completion</c>, or the error the run ended with.</summary>
public sealed class CompletionRun : AnswerRun
{
    private readonly TaskCompletionSource<ChatAnswer> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ChatAnswerEnds.CompletionFold _fold;

    internal CompletionRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, int promptTokenEstimate, Action<int>? onText,
        IRunListener? listener = null, bool remembersReply = true, IRunCommit? commit = null)
        : base(agent, header, includeUsage: true, promptTokenEstimate, onText, listener, remembersReply, commit) =>
        _fold = new ChatAnswerEnds.CompletionFold(header);

    public Task<ChatAnswer> Answer => _answer.Task;

    private protected override bool AnswerEnded => _answer.Task.IsCompleted;

    internal override ValueTask<bool> DeliverAsync(ChatStreamPart part)
    {
        if (_fold.Add(part) is { } answer && _answer.TrySetResult(answer)) Listener?.OnAnswer(answer);
        return new(true);
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

    /// <summary>A completion run ended without an answer: its lane broke (a failure) or it was cancelled.</summary>
    void OnAnswerFailed(Exception failure);

    /// <summary>How the run ended (every run, once).</summary>
    void OnOutcome(TurnOutcome outcome);
}
