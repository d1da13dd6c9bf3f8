using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using System.Text.Json;
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
        Utf8JsonWriter? json = null;
        try
        {
            // Each event's JSON goes straight into the formatter's UTF-8 buffer, with one writer for the answer.
            await SseFormatter.WriteAsync(ReadBatchesAsync(answer.Events.Parts, body, aborted), new UnflushedPipeStream(body),
                (item, output) => ChatAnswerEnds.WriteEvent(json ??= ChatAnswerEnds.NewEventWriter(output), output, header, item.Data),
                aborted);
        }
        finally
        {
            json?.Dispose();
            answer.Abandon();
        }
    }

    /// <summary>The run's parts as they come; before waiting for more, what was written so far is flushed.</summary>
    private static async IAsyncEnumerable<SseItem<ChatStreamPart>> ReadBatchesAsync(
        ChannelReader<ChatStreamPart> parts, PipeWriter body, [EnumeratorCancellation] CancellationToken aborted)
    {
        while (true)
        {
            while (parts.TryRead(out var part)) yield return new SseItem<ChatStreamPart>(part);
            // Waits here while a slow client's socket is full: the run's channel fills and the agent waits.
            await body.FlushAsync(aborted);
            if (!await parts.WaitToReadAsync(aborted)) yield break;
        }
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
