using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.Api.Http;

/// <summary>
/// Writes a streamed answer's parts into the HTTP response as Server-Sent Events (spec §8), with .NET's
/// <see cref="SseFormatter"/>: each part is appended to the response pipe as one <c>data:</c> event,
/// and the lane flushes per burst (<see cref="FlushAsync"/> is the pipe's flush: it waits while the
/// reader is behind, which holds up the agent). The formatter takes a sequence and a stream: this one
/// object is both, for the answer's whole life, and the formatter rents its buffers only per call, so
/// an open stream waiting for its agent holds none of them.
/// </summary>
internal sealed class SseAnswerWriter(PipeWriter body, ChatAnswerHeader header)
    : Stream, IAnswerWriter, IAsyncEnumerable<SseItem<SseAnswerWriter.HeaderedPart>>, IAsyncEnumerator<SseItem<SseAnswerWriter.HeaderedPart>>
{
    // Static, so one delegate serves every answer: the header travels with the item instead of in a closure.
    private static readonly Action<SseItem<HeaderedPart>, IBufferWriter<byte>> Format =
        static (item, output) => ChatAnswerEnds.WriteEvent(output, item.Data.Header, item.Data.Part);

    // The part to write, then the part being written: only during TryWrite, so the writer holds no part between events.
    private ChatStreamPart? _next;
    private ChatStreamPart? _current;

    internal readonly record struct HeaderedPart(ChatAnswerHeader Header, ChatStreamPart Part);

    public bool TryWrite(ChatStreamPart part)
    {
        _next = part;
        try
        {
            // Completes at once: the part is at hand and this stream only appends to the response pipe.
            return SseFormatter.WriteAsync(this, this, Format).IsCompletedSuccessfully;
        }
        finally
        {
            _next = null;
            _current = null;
        }
    }

    // A flush that is over at once completes this without suspending (and without allocating).
    async ValueTask<bool> IAnswerWriter.FlushAsync() => IsReaderThere(await body.FlushAsync().ConfigureAwait(false));

    // Completed: the response is over (the connection is gone); cancelled: the run was stopped while the flush waited.
    private static bool IsReaderThere(FlushResult result) => !result.IsCompleted && !result.IsCanceled;

    public void CancelPendingFlush() => body.CancelPendingFlush();

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

    // Appending flushes nothing, and the lane flushes the response itself (FlushAsync, the answer writer's).
    // Overridden so a formatter that flushes after each event stays synchronous (Stream's own runs on the thread pool).
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
