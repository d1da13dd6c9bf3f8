using System.Threading.Tasks.Sources;
using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// A streamed answer: its parts go to the <see cref="IAnswerWriter"/> the reader hands over with
/// <see cref="WriteToAsync"/> (the HTTP side writes them as Server-Sent Events), on the lane's thread.
/// Parts that come before the writer wait on the lane. The lane flushes per burst
/// (<see cref="AnswerRun.FlushAsync"/>) and takes nothing more while a flush waits for the reader.
/// </summary>
public sealed class StreamingRun : AnswerRun, IValueTaskSource, IValueTaskSource<bool>
{
    private const int NoPartWaiting = 0, PartWaiting = 1, WriterAttached = 2;
    private static readonly Exception EndedWell = new("The answer ended.");

    // The writer, once handed over (any thread, once); the part that came before it.
    private IAnswerWriter? _writer;
    private ChatStreamPart? _waitingPart;
    private int _attachState;
    private ManualResetValueTaskSourceCore<bool> _waitingPartWritten = new();
    // How the hand-over ends: completed when the lane is done with the writer (no task object per run).
    private ManualResetValueTaskSourceCore<bool> _released = new() { RunContinuationsAsynchronously = true };
    private int _releasedSet;
    // Set once, when the run's end is decided: EndedWell, or the failure the writer gets.
    private Exception? _ending;
    private int _flushing;

    internal StreamingRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        Action<int>? onText, IRunListener? listener = null, bool remembersReply = true, IRunCommit? commit = null)
        : base(agent, header, includeUsage, promptTokenEstimate, onText, listener, remembersReply, commit)
    {
    }

    /// <summary>
    /// Hands the writer over: from now on the lane writes the answer's parts into <paramref name="writer"/>.
    /// Completes once the lane is done with it: after [DONE] (written but maybe not flushed: the caller
    /// flushes), when the run was cancelled (nothing more is written), or with a failure when the lane
    /// broke. Call once.
    /// </summary>
    public ValueTask WriteToAsync(IAnswerWriter writer)
    {
        if (Interlocked.CompareExchange(ref _writer, writer, null) is not null)
            throw new InvalidOperationException("The answer's writer was handed over already.");
        // A full fence, as in DeliverAsync: whichever of the two comes second writes the part that waits.
        if (Interlocked.Exchange(ref _attachState, WriterAttached) == PartWaiting) WriteWaitingPart(writer);
        // Handed over after the run was done with writers (it was cancelled first): the run keeps no way to it.
        if (Volatile.Read(ref _releasedSet) == 1) Volatile.Write(ref _writer, null);
        return new ValueTask(this, _released.Version);
    }

    internal override bool Flushes => true;

    private bool Ended => Volatile.Read(ref _ending) is not null;

    private protected override bool AnswerEnded => Ended;

    internal override ValueTask<bool> DeliverAsync(ChatStreamPart part)
    {
        if (Ended) return new(true);
        if (Volatile.Read(ref _writer) is { } writer) return new(Write(writer, part));
        _waitingPart = part;
        if (Interlocked.CompareExchange(ref _attachState, PartWaiting, NoPartWaiting) == NoPartWaiting)
            return new ValueTask<bool>(this, _waitingPartWritten.Version);
        // The writer came meanwhile.
        _waitingPart = null;
        return new(Write(Volatile.Read(ref _writer)!, part));
    }

    private void WriteWaitingPart(IAnswerWriter? writer)
    {
        var part = _waitingPart!;
        _waitingPart = null;
        // Closed before the writer came: the part is dropped.
        _waitingPartWritten.SetResult(writer is null || Ended || Write(writer, part));
    }

    private bool Write(IAnswerWriter writer, ChatStreamPart part)
    {
        bool written;
        try
        {
            written = writer.TryWrite(part);
        }
        catch (Exception)
        {
            // The response is over (the connection is gone, or the request ended).
            written = false;
        }
        // The writer's owner flushes the end: the lane is free at once, even for a reader who is behind.
        if (written && part is DonePart) Close(null);
        return written;
    }

    internal override ValueTask<bool> FlushAsync()
    {
        if (Volatile.Read(ref _writer) is not { } writer) return new(true);
        // Marked before the flush starts (a full fence, as in Close): a run closed from another thread meanwhile
        // (its lane stopping) leaves the writer to be handed back when the flush is over.
        Interlocked.Exchange(ref _flushing, 1);
        if (Ended) return new(FlushOver(readerThere: true));
        return FlushThenHandBackAsync(writer);
    }

    /// <summary>A flush that is over at once completes this without suspending, on the lane's thread.</summary>
    private async ValueTask<bool> FlushThenHandBackAsync(IAnswerWriter writer)
    {
        bool readerThere;
        try
        {
            readerThere = await writer.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            readerThere = false;
        }
        return FlushOver(readerThere);
    }

    private bool FlushOver(bool readerThere)
    {
        // A full fence between this write and the read of the ending, as in Close: one of the two hands the writer back.
        Interlocked.Exchange(ref _flushing, 0);
        if (Ended) Release();
        return readerThere;
    }

    internal override void Close(Exception? failure)
    {
        // A full fence between this write and the read of the flush state, as in FlushOver.
        if (Interlocked.CompareExchange(ref _ending, failure ?? EndedWell, null) is not null) return;
        // A part waiting for a writer that has not come is dropped.
        if (Interlocked.Exchange(ref _attachState, WriterAttached) == PartWaiting) WriteWaitingPart(null);
        // A flush in flight still uses the writer: it is handed back once that flush is over (FlushOver),
        // which this hastens (a server completes it anyway when the connection goes; a lane that stops does not wait).
        if (Volatile.Read(ref _flushing) == 0) Release();
        else Volatile.Read(ref _writer)?.CancelPendingFlush();
    }

    private void Release()
    {
        if (Interlocked.Exchange(ref _releasedSet, 1) == 1) return;
        // The writer is its owner's again: the run keeps no way to it.
        Volatile.Write(ref _writer, null);
        if (_ending is { } failure && !ReferenceEquals(failure, EndedWell)) _released.SetException(failure);
        else _released.SetResult(true);
    }

    void IValueTaskSource.GetResult(short token) => _released.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _released.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _released.OnCompleted(continuation, state, token, flags);

    bool IValueTaskSource<bool>.GetResult(short token) => _waitingPartWritten.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _waitingPartWritten.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _waitingPartWritten.OnCompleted(continuation, state, token, flags);
}
