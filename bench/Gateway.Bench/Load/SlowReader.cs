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
    /// <param name="ServerSendQueueBytes">What the kernel held in the server's send queue of this connection at the end (-1: unknown).</param>
    public sealed record Result(long BodyBytes, int Events, double Seconds, long ServerSendQueueBytes);

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
        var sendQueue = ServerSendQueue(endpoint.Port, connection.LocalPort);
        await whileStillOpen();
        return new Result(scanner.Bytes, scanner.Events, seconds, sendQueue);
    }

    /// <summary>
    /// The tx_queue of the server's end of the connection (local port = server, remote port = client)
    /// from <c>/proc/net/tcp</c>: bytes written by the server that the kernel holds because the
    /// client has not read them.
    /// </summary>
    private static long ServerSendQueue(int serverPort, int clientPort)
    {
        try
        {
            var local = $":{serverPort:X4} ";
            var remote = $":{clientPort:X4} ";
            foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 5 || !(fields[1] + " ").EndsWith(local, StringComparison.Ordinal) || !(fields[2] + " ").EndsWith(remote, StringComparison.Ordinal)) continue;
                var queues = fields[4].Split(':');
                return Convert.ToInt64(queues[0], 16);
            }
        }
        catch (IOException)
        {
        }
        return -1;
    }

    private sealed class StopReading : Exception;
}
