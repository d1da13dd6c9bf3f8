using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Threading.Tasks.Sources;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// A streamed answer: the lane writes its parts as Server-Sent Events (spec §8, .NET's
/// <see cref="SseFormatter"/>) straight into the response, on the lane's own thread. The writer hands
/// over its response with <see cref="WriteToAsync"/>; parts that come before wait on the lane.
/// A burst (the parts the agent has ready at once) is flushed as one send when it ends, or after
/// <c>burstLimit</c> parts; a flush that does not complete at once (the reader is slow) holds the lane,
/// and so the agent, until the reader has taken it. No channel or writer loop sits in between: an open
/// stream holds only this object and the response, and a burst costs no thread hop.
/// </summary>
public sealed class StreamingRun : AnswerRun, IValueTaskSource
{
    private const int NoFlush = 0, Flushing = 1, Flushed = 2, FlushFoundReaderGone = 3;
    private static readonly Exception EndedWell = new("The answer ended.");

    private readonly int _burstLimit;
    // The response, once the writer hands it over (any thread, once); the lane's answer end, once the run is opened on it.
    private PipeWriter? _body;
    private AnswerLaneSink.Control? _answerEnd;
    // How the hand-over ends: completed by the lane when it is done with the response (no task object per run).
    private ManualResetValueTaskSourceCore<bool> _written = new() { RunContinuationsAsynchronously = true };
    private int _writtenSet;
    // Set once, when the run's end is decided: EndedWell, or the failure the writer gets.
    private Exception? _ending;
    private int _flushState;
    // On the lane's thread only.
    private int _unflushedParts;
    private bool _burstEndAsked;
    private EventWriter? _events;

    internal StreamingRun(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        int burstLimit, Action<int>? onText, IRunListener? listener = null, bool remembersReply = true)
        : base(agent, header, includeUsage, promptTokenEstimate, onText, listener, remembersReply)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(burstLimit, 1);
        _burstLimit = burstLimit;
    }

    /// <summary>
    /// Hands the response over: from now on the lane writes the answer's events into <paramref name="body"/>
    /// (the response has started; nothing else may write to it meanwhile). Completes once the lane is done
    /// with it: after [DONE] (written but maybe not flushed: the caller flushes), when the reader left or the
    /// run was cancelled (nothing more is written), or with a failure when the lane broke. Call once.
    /// </summary>
    public ValueTask WriteToAsync(PipeWriter body)
    {
        // A full fence between this write and the read of the answer end, as between the lane's write of the
        // answer end and its read of the body (Opened, then TryDeliver): one of the two sees the other, so a
        // part waiting for the body is woken.
        if (Interlocked.CompareExchange(ref _body, body, null) is not null)
            throw new InvalidOperationException("The answer's response was handed over already.");
        Volatile.Read(ref _answerEnd)?.Wake(this);
        return new ValueTask(this, _written.Version);
    }

    /// <summary>Whether the lane waits for the reader to take a flushed burst (the agent is held up meanwhile).</summary>
    internal bool WaitsForReader => Volatile.Read(ref _flushState) == Flushing;

    internal override void Opened(AnswerLaneSink.Control answerEnd) => Interlocked.Exchange(ref _answerEnd, answerEnd);

    internal override bool TryDeliver(ChatStreamPart part)
    {
        if (Ended) return true;
        if (Volatile.Read(ref _body) is not { } body || Volatile.Read(ref _flushState) != NoFlush) return false;
        if (!TryWrite(body, part))
        {
            ReaderLeft();
            return true;
        }
        if (part is DonePart)
        {
            // The writer flushes the end: the lane is free at once, even for a reader who is behind.
            Close(null);
            return true;
        }
        if (++_unflushedParts >= _burstLimit) Flush(body);
        else if (!_burstEndAsked)
        {
            // Woken after the parts at hand now: the lane's actor handles this after the events it has queued.
            _burstEndAsked = true;
            _answerEnd?.Wake(this);
        }
        return true;
    }

    internal override void OnWake()
    {
        switch (Volatile.Read(ref _flushState))
        {
            case Flushed:
                _flushState = NoFlush;
                break;
            case FlushFoundReaderGone:
                _flushState = NoFlush;
                ReaderLeft();
                return;
            case Flushing:
                return;
        }
        if (!_burstEndAsked || Ended) return;
        _burstEndAsked = false;
        if (_unflushedParts > 0 && Volatile.Read(ref _body) is { } body) Flush(body);
    }

    private bool Ended => Volatile.Read(ref _ending) is not null;

    private protected override bool AnswerEnded => Ended;

    internal override void Close(Exception? failure)
    {
        // A full fence between this write and the read of the flush state, as in AwaitFlushAsync.
        if (Interlocked.CompareExchange(ref _ending, failure ?? EndedWell, null) is not null) return;
        // A flush in flight still uses the response: the writer gets it back once that flush is over (AwaitFlushAsync),
        // which this hastens (a server completes it anyway when the connection goes; a lane that stops does not wait).
        if (Volatile.Read(ref _flushState) != Flushing) SetWritten();
        else Volatile.Read(ref _body)?.CancelPendingFlush();
    }

    private void ReaderLeft()
    {
        Close(null);
        // Stops the agent; the lane drops what is left of the run.
        Lane?.Cancel(this);
    }

    private bool TryWrite(PipeWriter body, ChatStreamPart part)
    {
        try
        {
            var events = _events ??= new EventWriter(body, Header);
            // Completes at once: the part is at hand and the stream only appends to the response pipe.
            return events.Write(part).IsCompletedSuccessfully;
        }
        catch (Exception)
        {
            // The response is over (the connection is gone, or the request ended).
            return false;
        }
    }

    private void Flush(PipeWriter body)
    {
        _unflushedParts = 0;
        ValueTask<FlushResult> flush;
        try
        {
            flush = body.FlushAsync();
        }
        catch (Exception)
        {
            ReaderLeft();
            return;
        }
        _ = FinishFlushAsync(flush);
    }

    /// <summary>
    /// A flush that is over at once is finished here, on the lane's thread (the method then completes without
    /// suspending). One that waits for a slow reader holds the lane (no more parts are taken) until it is over.
    /// </summary>
    private async Task FinishFlushAsync(ValueTask<FlushResult> flush)
    {
        var waits = !flush.IsCompleted;
        // A full fence, as in Close: a run closed from another thread (its lane stopping) hands the response back once.
        if (waits) Interlocked.Exchange(ref _flushState, Flushing);
        bool readerThere;
        try
        {
            readerThere = IsReaderThere(await flush.ConfigureAwait(false));
        }
        catch (Exception)
        {
            readerThere = false;
        }
        if (!waits)
        {
            if (!readerThere) ReaderLeft();
            return;
        }
        // A full fence between this write and the read of ended, as in Close: one of the two hands the response back.
        Interlocked.Exchange(ref _flushState, readerThere ? Flushed : FlushFoundReaderGone);
        if (Ended) SetWritten();
        else _answerEnd?.Wake(this);
    }

    // Completed: the response is over (the connection is gone).
    private static bool IsReaderThere(FlushResult result) => !result.IsCompleted && !result.IsCanceled;

    private void SetWritten()
    {
        if (Interlocked.Exchange(ref _writtenSet, 1) == 1) return;
        // The response is the writer's again: the run keeps no way to it.
        _events = null;
        Volatile.Write(ref _body, null);
        if (_ending is { } failure && !ReferenceEquals(failure, EndedWell)) _written.SetException(failure);
        else _written.SetResult(true);
    }

    void IValueTaskSource.GetResult(short token) => _written.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _written.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _written.OnCompleted(continuation, state, token, flags);

    private readonly record struct HeaderedPart(ChatAnswerHeader Header, ChatStreamPart Part);

    /// <summary>
    /// Writes one part at a time as an SSE event with .NET's formatter, appending to the response pipe
    /// without flushing it (the run flushes per burst). The formatter takes a sequence and a stream: this
    /// one object is both, for the run's whole life, and the formatter rents its buffers only per call,
    /// so an open stream waiting for its agent holds none of them.
    /// </summary>
    private sealed class EventWriter(PipeWriter body, ChatAnswerHeader header)
        : Stream, IAsyncEnumerable<SseItem<HeaderedPart>>, IAsyncEnumerator<SseItem<HeaderedPart>>
    {
        // Static, so one delegate serves every answer: the header travels with the item instead of in a closure.
        private static readonly Action<SseItem<HeaderedPart>, IBufferWriter<byte>> Format =
            static (item, output) => ChatAnswerEnds.WriteEvent(output, item.Data.Header, item.Data.Part);

        // The part to write, then the part being written: only during Write, so the writer holds no part between events.
        private ChatStreamPart? _next;
        private ChatStreamPart? _current;

        public Task Write(ChatStreamPart part)
        {
            _next = part;
            try
            {
                return SseFormatter.WriteAsync(this, this, Format);
            }
            finally
            {
                _next = null;
                _current = null;
            }
        }

        // The sequence of one part.
        public SseItem<HeaderedPart> Current => new(new HeaderedPart(header, _current!));

        public IAsyncEnumerator<SseItem<HeaderedPart>> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

        public ValueTask<bool> MoveNextAsync()
        {
            _current = _next;
            _next = null;
            return ValueTask.FromResult(_current is not null);
        }

        // Both the enumerator's and the stream's: neither holds anything.
        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

        // The stream: it appends to the pipe.
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => body.Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => body.Write(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            body.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            body.Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override void Flush()
        {
        }

        // Appending flushes nothing, and the run flushes the response itself. Overridden so a formatter that
        // flushes after each event stays synchronous (Stream's own runs on the thread pool).
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
