using System.Threading.Channels;
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
    public void Cancel() => Lane?.Cancel(this);

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

    /// <summary>Hands a part to the run's end; false when the end is full (call <see cref="RetryPending"/> once it has room).</summary>
    internal abstract bool TryDeliver(ChatStreamPart part);

    /// <summary>Retries the part that did not fit; false while there is still no room.</summary>
    internal virtual bool RetryPending() => true;

    /// <summary>Completes when the end may have room again.</summary>
    internal virtual ValueTask<bool> WhenWritable() => ValueTask.FromResult(true);

    /// <summary>The reader left or the lane broke: nothing more will be delivered.</summary>
    internal abstract void Close(Exception? failure);
}

/// <summary>A streamed answer: the reader takes its parts, in wire order, from a bounded channel.</summary>
public sealed class StreamingRun : AnswerRun
{
    private readonly Channel<ChatStreamPart> _parts;
    private ChatStreamPart? _pending;

    internal StreamingRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        int channelCapacity, Action<int>? onText, IRunListener? listener = null, bool remembersReply = true)
        : base(agent, header, includeUsage, promptTokenEstimate, onText, listener, remembersReply)
    {
        _parts = Channel.CreateBounded<ChatStreamPart>(new BoundedChannelOptions(channelCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        Events = new AnswerEvents(_parts.Reader, header);
    }

    /// <summary>The answer's parts in wire order, ending with done; the writer formats them as SSE events.</summary>
    public AnswerEvents Events { get; }

    internal override bool TryDeliver(ChatStreamPart part)
    {
        if (!_parts.Writer.TryWrite(part))
        {
            _pending = part;
            return false;
        }
        if (part is DonePart) _parts.Writer.TryComplete();
        return true;
    }

    internal override bool RetryPending()
    {
        if (_pending is not { } part) return true;
        _pending = null;
        return TryDeliver(part);
    }

    internal override ValueTask<bool> WhenWritable() => _parts.Writer.WaitToWriteAsync();

    internal override void Close(Exception? failure)
    {
        _pending = null;
        _parts.Writer.TryComplete(failure);
    }
}

/// <summary>
/// The reading end of a streamed answer: its parts as they come (the channel completes after done),
/// and the header every event of the answer carries (<see cref="ChatAnswerEnds.WriteEvent"/>).
/// </summary>
public sealed class AnswerEvents(ChannelReader<ChatStreamPart> parts, ChatAnswerHeader header)
{
    public ChannelReader<ChatStreamPart> Parts { get; } = parts;

    public ChatAnswerHeader Header { get; } = header;
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
