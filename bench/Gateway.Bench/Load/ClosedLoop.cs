using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Gateway.Bench.Load;

/// <summary>The bytes of request number <paramref name="index"/> (0-based).</summary>
public delegate ReadOnlyMemory<byte> RequestFactory(long index);

/// <summary>
/// What to send, how many at once, and for how long. With <see cref="TotalRequests"/> the run sends
/// exactly that many (numbered 0..n-1) and records all of them; otherwise it runs for
/// <see cref="Warmup"/> unrecorded, then records what completes within <see cref="Duration"/>.
/// </summary>
public sealed record LoadPlan(
    IPEndPoint Endpoint,
    RequestFactory Request,
    bool Streaming,
    int Concurrency,
    TimeSpan Warmup,
    TimeSpan Duration,
    long? TotalRequests = null,
    int? ExpectedEvents = null)
{
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A request factory per worker, made as the worker starts (instead of <see cref="Request"/>), called with the
    /// worker's own request number (0, 1, 2, … in both modes): for requests that depend on what this worker sent
    /// before (durable: one user's turns in a row, then the next user's).
    /// </summary>
    public Func<RequestFactory>? PerWorker { get; init; }
}

public sealed class LoadResult
{
    public required long Requests { get; init; }

    public required double Seconds { get; init; }

    public double RequestsPerSecond => Seconds > 0 ? Requests / Seconds : 0;

    /// <summary>Whole request: send to the end of the response ([DONE] for streams).</summary>
    public required LatencyHistogram Latency { get; init; }

    /// <summary>Streams: to the first event (the role chunk).</summary>
    public required LatencyHistogram FirstEvent { get; init; }

    /// <summary>Streams: to the second event (the first content chunk).</summary>
    public required LatencyHistogram FirstContent { get; init; }

    public required ErrorCounts Errors { get; init; }
}

/// <summary>Errors by kind; every failed request lands here, none is dropped.</summary>
public sealed class ErrorCounts
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

    public long Total => _counts.Values.Sum();

    public IReadOnlyDictionary<string, long> ByKind => _counts;

    public void Add(string kind, long count = 1) => _counts[kind] = _counts.GetValueOrDefault(kind) + count;

    public void Add(ErrorCounts other)
    {
        foreach (var (kind, count) in other._counts) Add(kind, count);
    }

    public override string ToString() => _counts.Count == 0 ? "none" : string.Join(", ", _counts.Select(pair => $"{pair.Key}: {pair.Value}"));

    public static string Classify(Exception ex, bool timedOut) => ex switch
    {
        OperationCanceledException when timedOut => "timeout",
        SocketException socket => $"socket {socket.SocketErrorCode}",
        HttpFramingException protocol => $"protocol: {protocol.Message}",
        IOException { InnerException: SocketException socket } => $"socket {socket.SocketErrorCode}",
        _ => ex.GetType().Name,
    };
}

/// <summary>
/// A closed-loop load generator: <see cref="LoadPlan.Concurrency"/> workers, each on its own
/// keep-alive connection, each sending its next request as soon as the previous answer has been read
/// to the end. Latencies go into per-worker HDR histograms, merged at the end.
/// </summary>
public static class ClosedLoop
{
    public static async Task<LoadResult> RunAsync(LoadPlan plan, CancellationToken cancellation)
    {
        var start = Stopwatch.GetTimestamp();
        var measureFrom = start + (long)(plan.Warmup.TotalSeconds * Stopwatch.Frequency);
        var end = plan.TotalRequests is null ? measureFrom + (long)(plan.Duration.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        var next = -1L;
        var workers = Enumerable.Range(0, plan.Concurrency)
            .Select(_ => Task.Run(() => WorkerAsync(plan, measureFrom, end, () => Interlocked.Increment(ref next), cancellation), cancellation))
            .ToArray();
        var results = await Task.WhenAll(workers);
        var finished = Stopwatch.GetTimestamp();

        var merged = new LoadResult
        {
            Requests = results.Sum(r => r.Requests),
            Seconds = plan.TotalRequests is null ? plan.Duration.TotalSeconds : (finished - start) / (double)Stopwatch.Frequency,
            Latency = new LatencyHistogram(),
            FirstEvent = new LatencyHistogram(),
            FirstContent = new LatencyHistogram(),
            Errors = new ErrorCounts(),
        };
        foreach (var result in results)
        {
            merged.Latency.Add(result.Latency);
            merged.FirstEvent.Add(result.FirstEvent);
            merged.FirstContent.Add(result.FirstContent);
            merged.Errors.Add(result.Errors);
        }
        return merged;
    }

    private static async Task<LoadResult> WorkerAsync(LoadPlan plan, long measureFrom, long end, Func<long> nextIndex, CancellationToken cancellation)
    {
        var latency = new LatencyHistogram();
        var firstEvent = new LatencyHistogram();
        var firstContent = new LatencyHistogram();
        var errors = new ErrorCounts();
        var requests = 0L;
        var scanner = new SseScanner();
        var counter = new CountingSink();
        IBodySink sink = plan.Streaming ? scanner : counter;
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var factory = plan.PerWorker?.Invoke();
        var sent = 0L;
        HttpConnection? connection = null;
        try
        {
            while (!cancellation.IsCancellationRequested)
            {
                long index;
                if (plan.TotalRequests is { } total)
                {
                    index = nextIndex();
                    if (index >= total) break;
                }
                else
                {
                    if (Stopwatch.GetTimestamp() >= end) break;
                    index = 0;
                }
                var request = factory is null ? plan.Request(index) : factory(sent);
                sent++;
                var started = Stopwatch.GetTimestamp();
                try
                {
                    timeout.CancelAfter(plan.RequestTimeout);
                    connection ??= await HttpConnection.OpenAsync(plan.Endpoint, timeout.Token);
                    await connection.SendAsync(request, timeout.Token);
                    scanner.Reset();
                    counter.Reset();
                    var head = await connection.ReadResponseAsync(sink, timeout.Token);
                    var ended = Stopwatch.GetTimestamp();
                    if (!timeout.TryReset())
                    {
                        timeout.Dispose();
                        timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                    }
                    if (!head.KeepAlive)
                    {
                        connection.Dispose();
                        connection = null;
                    }
                    if (Failure(plan, head, scanner, counter) is { } failure)
                    {
                        errors.Add(failure);
                        continue;
                    }
                    var recorded = plan.TotalRequests is not null || (ended >= measureFrom && ended <= end);
                    if (!recorded) continue;
                    requests++;
                    latency.RecordTicks(ended - started);
                    if (plan.Streaming)
                    {
                        firstEvent.RecordTicks(scanner.FirstEventAt - started);
                        if (scanner.SecondEventAt != 0) firstContent.RecordTicks(scanner.SecondEventAt - started);
                    }
                }
                catch (Exception ex) when (!cancellation.IsCancellationRequested)
                {
                    errors.Add(ErrorCounts.Classify(ex, timeout.IsCancellationRequested));
                    connection?.Dispose();
                    connection = null;
                    timeout.Dispose();
                    timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                    // Don't spin on a refusing server.
                    await Task.Delay(10, cancellation);
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
        finally
        {
            connection?.Dispose();
            timeout.Dispose();
        }
        return new LoadResult
        {
            Requests = requests,
            Seconds = 0,
            Latency = latency,
            FirstEvent = firstEvent,
            FirstContent = firstContent,
            Errors = errors,
        };
    }

    private static string? Failure(LoadPlan plan, ResponseHead head, SseScanner scanner, CountingSink counter)
    {
        if (head.Status != 200) return plan.Streaming ? $"http {head.Status}" : $"http {head.Status} {counter.Start}";
        if (!plan.Streaming) return null;
        if (scanner.ErrorEvent) return "in-band error event";
        if (!scanner.Done) return "stream ended without [DONE]";
        if (plan.ExpectedEvents is { } expected && scanner.Events != expected) return $"stream of {scanner.Events} events, expected {expected}";
        return null;
    }
}
