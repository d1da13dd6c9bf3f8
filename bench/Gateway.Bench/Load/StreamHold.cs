using System.Net;

namespace Gateway.Bench.Load;

/// <summary>
/// Many SSE streams open at once, each on its own connection: they are opened with at most
/// <c>connectParallelism</c> still waiting for their first event (so the listen backlog never
/// overflows), then read to the end. Counts streams opened (first event read), finished, and done
/// (ended with <c>[DONE]</c>); every other ending is an error, by kind.
/// </summary>
public sealed class StreamHold(IPEndPoint endpoint, byte[] request, int count)
{
    private readonly TaskCompletionSource _allOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ErrorCounts _errors = new();
    private readonly LatencyHistogram _firstEvent = new();
    private int _opened;
    private int _settled;
    private int _finished;
    private int _done;

    public int Count => count;

    public int Opened => Volatile.Read(ref _opened);

    public int Finished => Volatile.Read(ref _finished);

    public int Done => Volatile.Read(ref _done);

    /// <summary>Completes when every stream has either read its first event or failed before it.</summary>
    public Task AllOpen => _allOpen.Task;

    public ErrorCounts Errors
    {
        get
        {
            lock (_errors) return _errors;
        }
    }

    public LatencySummary FirstEvent()
    {
        lock (_firstEvent) return _firstEvent.Summary();
    }

    /// <param name="stopAfterEvents">Drop each stream after this many events (a warm-up); null: read to the end.</param>
    public async Task RunAsync(int connectParallelism, TimeSpan timeout, CancellationToken cancellation, int? stopAfterEvents = null)
    {
        using var gate = new SemaphoreSlim(connectParallelism);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        limit.CancelAfter(timeout);
        var streams = new Task[count];
        for (var i = 0; i < count; i++) streams[i] = OneAsync(gate, stopAfterEvents, limit.Token);
        await Task.WhenAll(streams);
        cancellation.ThrowIfCancellationRequested();
    }

    private async Task OneAsync(SemaphoreSlim gate, int? stopAfterEvents, CancellationToken cancellation)
    {
        await gate.WaitAsync(cancellation);
        var opened = false;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var connection = await HttpConnection.OpenAsync(endpoint, cancellation, bufferSize: 4096);
            await connection.SendAsync(request, cancellation);
            var scanner = new SseScanner();
            scanner.EventReceived = s =>
            {
                if (s.Events == 1)
                {
                    opened = true;
                    lock (_firstEvent) _firstEvent.RecordTicks(s.FirstEventAt - started);
                    Interlocked.Increment(ref _opened);
                    gate.Release();
                    Settle();
                }
                if (s.Events >= stopAfterEvents) throw new StopReading();
            };
            var head = await connection.ReadResponseAsync(scanner, cancellation);
            var failure = head.Status != 200 ? $"http {head.Status}"
                : scanner.ErrorEvent ? "in-band error event"
                : !scanner.Done ? "stream ended without [DONE]"
                : null;
            if (failure is null) Interlocked.Increment(ref _done);
            else AddError(failure);
        }
        catch (StopReading)
        {
            Interlocked.Increment(ref _done);
        }
        catch (Exception ex)
        {
            AddError(ErrorCounts.Classify(ex, cancellation.IsCancellationRequested));
        }
        finally
        {
            if (!opened)
            {
                gate.Release();
                Settle();
            }
            Interlocked.Increment(ref _finished);
        }
    }

    private void Settle()
    {
        if (Interlocked.Increment(ref _settled) == count) _allOpen.TrySetResult();
    }

    private void AddError(string kind)
    {
        lock (_errors) _errors.Add(kind);
    }

    private sealed class StopReading : Exception;
}
