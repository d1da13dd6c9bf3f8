using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Gateway.Actors.Sessions;
using Gateway.Streams.Wire;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Api.Http;

/// <summary>
/// Writes a streamed answer as Server-Sent Events (spec §8) with .NET's <see cref="SseFormatter"/>,
/// flushing whenever the run has nothing more ready rather than after every event. The events still
/// leave as soon as they exist (nothing waits for more), but a burst (a fast model, a reader that
/// fell behind) goes out in one send instead of one per event. <c>TypedResults.ServerSentEvents</c>
/// flushes per event, which cost a system call and a wake-up per token on both ends.
/// The formatter is run once per burst, not once per answer: it rents its buffers for the call, so
/// an open stream waiting for its agent holds none of them.
/// A reader that leaves early (or a write that fails) stops the run.
/// </summary>
internal sealed class SseAnswerResult(AnswerStream answer) : IResult
{
    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        // Spec §8 says exactly "no-cache"; identity keeps compression middleware from holding events back.
        response.Headers.CacheControl = "no-cache";
        response.Headers.ContentEncoding = "identity";
        // Proxies such as nginx would otherwise hold events back.
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.GetRequiredFeature<IHttpResponseBodyFeature>().DisableBuffering();

        var body = response.BodyWriter;
        var aborted = context.RequestAborted;
        var header = answer.Events.Header;
        var parts = answer.Events.Parts;
        var ready = new ReadyParts(parts, header);
        var stream = new UnflushedPipeStream(body);
        // A client that leaves ends the run at once, even while nothing is ready to write. Registered once
        // for the whole answer: a token passed to every wait would cost each wait its own waiter object
        // and registration (the channel reuses one waiter only for a wait without a token).
        using var leaving = aborted.UnsafeRegister(static state => ((AnswerStream)state!).Abandon(), answer);
        try
        {
            // Waits here while a slow client's socket is full: the run's channel fills and the agent waits.
            // The wait ends when the run ends, which a client that leaves brings about (above).
            while (await parts.WaitToReadAsync())
            {
                // Completes without waiting: the parts are at hand and the stream only appends to the pipe.
                await SseFormatter.WriteAsync(ready, stream, Format, aborted);
                // Completed: the response is over (the connection is gone); stop the run.
                if ((await body.FlushAsync(aborted)).IsCompleted) break;
            }
        }
        finally
        {
            answer.Abandon();
        }
    }

    // Static, so one delegate serves every answer: the header travels with each item instead of in a closure.
    private static readonly Action<SseItem<HeaderedPart>, IBufferWriter<byte>> Format =
        static (item, output) => ChatAnswerEnds.WriteEvent(output, item.Data.Header, item.Data.Part);

    private readonly record struct HeaderedPart(ChatAnswerHeader Header, ChatStreamPart Part);

    /// <summary>The parts the run has ready now, without waiting for more: one burst.</summary>
    private sealed class ReadyParts(ChannelReader<ChatStreamPart> parts, ChatAnswerHeader header)
        : IAsyncEnumerable<SseItem<HeaderedPart>>, IAsyncEnumerator<SseItem<HeaderedPart>>
    {
        public SseItem<HeaderedPart> Current { get; private set; }

        // One answer writes one burst at a time, so the enumerator is this object, reused burst after burst.
        public IAsyncEnumerator<SseItem<HeaderedPart>> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

        public ValueTask<bool> MoveNextAsync()
        {
            if (!parts.TryRead(out var part)) return ValueTask.FromResult(false);
            Current = new SseItem<HeaderedPart>(new HeaderedPart(header, part));
            return ValueTask.FromResult(true);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>A write-only stream that appends to the response pipe without flushing it; the reader above flushes.</summary>
    private sealed class UnflushedPipeStream(PipeWriter body) : Stream
    {
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

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
