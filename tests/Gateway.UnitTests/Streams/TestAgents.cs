using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.IO.Pipelines;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Implementation;
using Akka.Streams.TestKit;
using Akka.TestKit;
using Gateway.Actors.Sessions;
using Gateway.Agents;
using Gateway.Api.Http;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// An agent the test drives: it says what the test scripts, waiting (a busy step) while the script is empty,
/// and records how far it got and how it was stopped.
/// </summary>
internal sealed class ScriptedAgent
{
    /// <summary>Makes a <see cref="ScriptedAgent"/> throw when it reaches this point of its script.</summary>
    public sealed record Throw(Exception Exception) : AgentEvent;

    /// <summary>
    /// Makes a <see cref="ScriptedAgent"/> busy in a step that ignores its cancellation token (a model call that cannot
    /// be cancelled) when it reaches this point of its script: the step ends only when <paramref name="Until"/> completes.
    /// </summary>
    public sealed record Stall(Task Until) : AgentEvent;

    private readonly Channel<AgentEvent> _script = Channel.CreateUnbounded<AgentEvent>();
    private readonly TaskCompletionSource _tokenCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _produced;

    public IAsyncEnumerable<AgentEvent> Events => Run();

    /// <summary>How many events the agent has handed out.</summary>
    public int Produced => Volatile.Read(ref _produced);

    /// <summary>Completes when the run's cancellation token fires.</summary>
    public Task TokenCancelled => _tokenCancelled.Task;

    /// <summary>Completes when the agent's enumerator has finished: ran out, threw, was cancelled, or was disposed.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Completes when the agent has begun a <see cref="Stall"/> step.</summary>
    public Task Stalled => _stalled.Task;

    public void Say(params AgentEvent[] events)
    {
        foreach (var agentEvent in events) _script.Writer.TryWrite(agentEvent);
    }

    /// <summary>The agent's enumeration ends after what is already scripted.</summary>
    public void End() => _script.Writer.TryComplete();

    private async IAsyncEnumerable<AgentEvent> Run([EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var registration = cancellation.Register(() => _tokenCancelled.TrySetResult());
        try
        {
            while (await _script.Reader.WaitToReadAsync(cancellation))
            {
                while (_script.Reader.TryRead(out var agentEvent))
                {
                    if (agentEvent is Throw toThrow) throw toThrow.Exception;
                    if (agentEvent is Stall stall)
                    {
                        _stalled.TrySetResult();
                        // Deaf to the token on purpose.
                        await stall.Until;
                        continue;
                    }
                    Interlocked.Increment(ref _produced);
                    yield return agentEvent;
                }
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }
}

/// <summary>An agent that fails before it has an enumerator at all.</summary>
internal sealed class BrokenAgent(Exception failure) : IAsyncEnumerable<AgentEvent>
{
    public IAsyncEnumerator<AgentEvent> GetAsyncEnumerator(CancellationToken cancellationToken = default) => throw failure;
}

internal static class TestAgents
{
    /// <summary>An agent for specs of a stage that must never read it: reading it fails with <paramref name="failure"/>.</summary>
    public static async IAsyncEnumerable<AgentEvent> Unread(string failure)
    {
        await Task.CompletedTask;
        throw new InvalidOperationException(failure);
#pragma warning disable CS0162 // an iterator needs a yield
        yield break;
#pragma warning restore CS0162
    }

    /// <summary>An agent that says <paramref name="events"/>, each after a yield (so each step is a real wait).</summary>
    public static async IAsyncEnumerable<AgentEvent> Saying(params AgentEvent[] events)
    {
        foreach (var agentEvent in events)
        {
            await Task.Yield();
            yield return agentEvent;
        }
    }
}

/// <summary>
/// Reads a streamed answer the way the HTTP side does: hands the run the HTTP side's SSE writer on a pipe as its response, completes the
/// pipe when the run hands it back (with the failure, if the run failed), and parses the SSE events off the
/// pipe's reading end with .NET's <see cref="SseParser"/>. The parser reads a few bytes at a time, so what
/// it has taken off the pipe is at most the event it is reading: a reader that stops reading holds up the run.
/// </summary>
internal sealed class AnswerReader
{
    // Lets a spec read one event, then the rest, from the same run without holding the reader itself.
    private static readonly ConditionalWeakTable<object, AnswerReader> Readers = new();
    private const int ReadBytes = 64;

    private readonly Pipe _pipe;
    private readonly CountingWriter _response;
    private readonly IAsyncEnumerator<SseItem<string>> _events;

    private AnswerReader(Func<IAnswerWriter, ValueTask> handOver, ChatAnswerHeader header, PipeOptions? options)
    {
        _pipe = new Pipe(options ?? PipeOptions.Default);
        _response = new CountingWriter(_pipe.Writer);
        HandedBack = HandOverAsync(handOver, header);
        _events = SseParser.Create(new TrickleStream(_pipe.Reader.AsStream(), ReadBytes)).EnumerateAsync().GetAsyncEnumerator();
    }

    /// <summary>Completes when the run has handed the response back (and the pipe is complete).</summary>
    public Task HandedBack { get; }

    /// <summary>How many times the response was flushed (each a send on a real connection).</summary>
    public int Flushes => _response.Flushes;

    /// <summary>
    /// True while a flush of the response waits for this reader to take what was sent (the pipe is full): the run's lane
    /// is held up by its reader, as a lane is by a client who does not read. Seen from the response, so it turns true
    /// inside the lane's flush call: the lane may still be finishing that step (it cannot get past the flush until the
    /// reader reads, but a reader who starts reading at once lets it go on before it handles signals sent meanwhile).
    /// </summary>
    public bool WaitsForReader => _response.FlushWaiting;

    /// <summary>The reader of this run, made (and the response handed over) on first use.</summary>
    public static AnswerReader Of(StreamingRun run) => Readers.GetValue(run, static made => new AnswerReader(((StreamingRun)made).WriteToAsync, ((StreamingRun)made).Header, null));

    /// <inheritdoc cref="Of(StreamingRun)"/>
    public static AnswerReader Of(AnswerStream answer) => Readers.GetValue(answer, static made => new AnswerReader(((AnswerStream)made).WriteToAsync, ((AnswerStream)made).Header, null));

    /// <summary>
    /// Hands the run a response that holds at most <paramref name="unreadBytes"/> bytes its reader has not taken
    /// (a flush waits beyond that): the reader of a run held up by its reader.
    /// </summary>
    public static AnswerReader Slow(StreamingRun run, int unreadBytes = 1)
    {
        var reader = new AnswerReader(run.WriteToAsync, run.Header, new PipeOptions(pauseWriterThreshold: unreadBytes, resumeWriterThreshold: unreadBytes));
        Readers.Add(run, reader);
        return reader;
    }

    private async Task HandOverAsync(Func<IAnswerWriter, ValueTask> handOver, ChatAnswerHeader header)
    {
        try
        {
            // The HTTP side's own writer, on a pipe standing in for the response.
            await handOver(new SseAnswerWriter(_response, header));
            // As the HTTP side does: the run may leave its last events unflushed.
            await _response.FlushAsync();
            await _pipe.Writer.CompleteAsync();
        }
        catch (Exception ex)
        {
            await _pipe.Writer.CompleteAsync(ex);
        }
    }

    /// <summary>The data of every event until the response ends.</summary>
    public async Task<List<string>> ReadAllAsync(TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        var data = new List<string>();
        while (await _events.MoveNextAsync().AsTask().WaitAsync(Remaining(deadline))) data.Add(_events.Current.Data);
        return data;
    }

    /// <summary>The data of the next event.</summary>
    public async Task<string> ReadOneAsync(TimeSpan within)
    {
        Assert.True(await _events.MoveNextAsync().AsTask().WaitAsync(within), "the answer ended");
        return _events.Current.Data;
    }

    private static TimeSpan Remaining(DateTime deadline) => deadline - DateTime.UtcNow is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero;

    /// <summary>The pipe's writer, counting flushes and telling whether one waits for the reader.</summary>
    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        private int _flushes;
        private int _flushWaiting;

        public int Flushes => Volatile.Read(ref _flushes);

        public bool FlushWaiting => Volatile.Read(ref _flushWaiting) == 1;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _flushes);
            var flush = inner.FlushAsync(cancellationToken);
            if (flush.IsCompleted) return flush;
            Volatile.Write(ref _flushWaiting, 1);
            return AwaitFlushAsync(flush);
        }

        private async ValueTask<FlushResult> AwaitFlushAsync(ValueTask<FlushResult> flush)
        {
            try
            {
                return await flush.ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _flushWaiting, 0);
            }
        }

        public override void Advance(int bytes) => inner.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    /// <summary>A stream that reads at most a few bytes at a time from another.</summary>
    private sealed class TrickleStream(Stream inner, int most) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, most));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer[..Math.Min(buffer.Length, most)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, Math.Min(count, most), cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>A spec's view of a streamed answer: the data of its events, within the test's time limit.</summary>
internal static class AnswerReading
{
    public static Task<List<string>> ReadAllDataAsync(this StreamingRun run, TimeSpan within) => AnswerReader.Of(run).ReadAllAsync(within);

    public static Task<string> ReadOneDataAsync(this StreamingRun run, TimeSpan within) => AnswerReader.Of(run).ReadOneAsync(within);

    public static Task<List<string>> ReadAllDataAsync(this AnswerStream answer, TimeSpan within) => AnswerReader.Of(answer).ReadAllAsync(within);

    public static Task<string> ReadOneDataAsync(this AnswerStream answer, TimeSpan within) => AnswerReader.Of(answer).ReadOneAsync(within);
}

/// <summary>
/// An answer writer that records what the lane does with it, in order: each part it writes, and <see cref="Flush"/> for
/// each flush. Its writes answer <see cref="TakesWrites"/>; its flushes answer <see cref="ReaderThere"/> at once, or, with
/// <see cref="FlushesWait"/>, wait until <see cref="CancelPendingFlush"/>.
/// </summary>
internal sealed class RecordingWriter : IAnswerWriter
{
    /// <summary>Stands for a flush in <see cref="Log"/>.</summary>
    public const string Flush = "flush";

    private readonly List<object> _log = [];
    private TaskCompletionSource<bool>? _waitingFlush;

    /// <summary>What writes answer: false, the reader has gone.</summary>
    public bool TakesWrites { get; init; } = true;

    /// <summary>What flushes answer: false, the reader has gone.</summary>
    public bool ReaderThere { get; init; } = true;

    /// <summary>Whether a flush waits (a reader who takes nothing) until <see cref="CancelPendingFlush"/>.</summary>
    public bool FlushesWait { get; init; }

    public IReadOnlyList<object> Log
    {
        get
        {
            lock (_log) return [.. _log];
        }
    }

    public bool TryWrite(ChatStreamPart part)
    {
        lock (_log) _log.Add(part);
        return TakesWrites;
    }

    public ValueTask<bool> FlushAsync()
    {
        lock (_log)
        {
            _log.Add(Flush);
            if (!FlushesWait) return new(ReaderThere);
            _waitingFlush = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            return new(_waitingFlush.Task);
        }
    }

    /// <summary>True while a flush waits.</summary>
    public bool FlushWaiting
    {
        get
        {
            lock (_log) return _waitingFlush is { Task.IsCompleted: false };
        }
    }

    /// <summary>Ends a waiting flush with false, as the HTTP side's writer does (its pipe's flush comes back cancelled).</summary>
    public void CancelPendingFlush()
    {
        lock (_log) _waitingFlush?.TrySetResult(false);
    }
}

/// <summary>Whether stream stages are left running: what a lane spec checks once it is over.</summary>
internal static class StageAssertions
{
    /// <summary>
    /// Runs <paramref name="block"/>, then waits until no graph runs under <paramref name="materializer"/> any more, and ends
    /// with Akka.Streams.TestKit's own <c>AssertAllStagesStoppedAsync</c>. That one alone proves nothing here: in 1.5.73 it
    /// stops every stream actor of the materializer (<c>StopChildren</c>) before it looks for one, so a stage left running
    /// passes it. This looks first, and stops nothing: every stage must have stopped on its own.
    /// </summary>
    public static Task AssertNoStageLeftRunningAsync(this TestKitBase kit, Func<Task> block, IMaterializer materializer) =>
        kit.AssertAllStagesStoppedAsync(async () =>
        {
            await block();
            await kit.AwaitRunningGraphsAsync(materializer, 0);
        }, materializer);

    /// <summary>
    /// Waits until exactly <paramref name="expected"/> graphs run under <paramref name="materializer"/>: the stream actors
    /// its supervisor has, one per materialized graph (its stages are fused into one interpreter actor).
    /// </summary>
    public static async Task AwaitRunningGraphsAsync(this TestKitBase kit, IMaterializer materializer, int expected)
    {
        var supervisor = Assert.IsType<ActorMaterializerImpl>(materializer).Supervisor;
        var probe = kit.CreateTestProbe();
        await kit.AwaitAssertAsync(async () =>
        {
            supervisor.Tell(StreamSupervisor.GetChildren.Instance, probe.Ref);
            var running = (await probe.ExpectMsgAsync<StreamSupervisor.Children>()).Refs;
            Assert.True(running.Count == expected, $"expected {expected} running graphs, found {running.Count}: {string.Join(", ", running)}");
        });
    }
}
