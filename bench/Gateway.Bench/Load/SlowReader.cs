using System.Diagnostics;
using System.Net;

namespace Gateway.Bench.Load;

/// <summary>
/// One client that reads a stream at a fixed rate (1 KB at a time, then waits its turn) with a small
/// socket receive buffer, so the server sees a slow reader and not a kernel buffer soaking up the
/// answer. After <c>duration</c> it runs <c>whileStillOpen</c> (a reading of the server) and
/// only then closes the connection.
/// </summary>
public static class SlowReader
{
    public sealed record Result(long BodyBytes, int Events, double Seconds);

    public static async Task<Result> RunAsync(IPEndPoint endpoint, byte[] request, int bytesPerSecond, TimeSpan duration,
        Func<Task> whileStillOpen, CancellationToken cancellation)
    {
        using var connection = await HttpConnection.OpenAsync(endpoint, cancellation, bufferSize: 16 * 1024, receiveBufferSize: 4096);
        await connection.SendAsync(request, cancellation);
        var scanner = new SseScanner();
        var started = Stopwatch.GetTimestamp();
        var stopAt = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        async ValueTask Pace()
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= stopAt) throw new StopReading();
            var due = started + (long)(scanner.Bytes / (double)bytesPerSecond * Stopwatch.Frequency);
            var wait = Math.Min(due, stopAt) - now;
            if (wait > 0) await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency), cancellation);
            if (Stopwatch.GetTimestamp() >= stopAt) throw new StopReading();
        }
        try
        {
            await connection.ReadResponseAsync(scanner, cancellation, maxRead: 1024, beforeRead: Pace);
        }
        catch (StopReading)
        {
        }
        var seconds = (Stopwatch.GetTimestamp() - started) / (double)Stopwatch.Frequency;
        await whileStillOpen();
        return new Result(scanner.Bytes, scanner.Events, seconds);
    }

    private sealed class StopReading : Exception;
}
