using System.Diagnostics;
using Gateway.Bench.Load;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>
/// <c>hold</c>: 1,000 and 10,000 streams open at once for 30 s, the agent sending one piece per
/// second. Each round starts a fresh server, warms it up (a few hundred streams dropped after their
/// first piece), induces a full GC, then opens the streams: RSS per open stream is the peak RSS
/// while all are open less the RSS before, over the count; CPU is averaged over the whole hold.
/// </summary>
public sealed class HoldScenario : Scenario
{
    private const int ConnectParallelism = 200;
    private const string HeapSize = "dotnet.gc.last_collection.heap.size";

    public override string Name => "hold";

    public override async Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        int[] counts = context.Quick ? [1000] : [1000, 10_000];
        var pieces = context.Quick ? 2 : 30;
        var wanted = (ulong)counts.Max() * 2 + 4096;
        var limit = OpenFileLimit.EnsureAtLeast(wanted);
        report.Notes.Add($"open-file limit {limit} (wanted {wanted}: one socket per stream in the client and in the server; children inherit it)");
        if (limit < (ulong)counts.Max() + 1024) report.Notes.Add("the open-file limit is too low for the largest hold: expect connection errors");
        report.Notes.Add($"the agent sends {pieces} pieces, one per second; streams are opened {ConnectParallelism} at a time");

        BaselineResponse answer;
        await using (var capture = await context.Servers.StartGatewayAsync(pieces, 30, cancellation))
        {
            // The twin agent answers the same bytes without the delay.
            answer = await BenchServers.CaptureAsync(capture.Endpoint, BenchRequests.Chat(capture.Endpoint, BenchAgents.HoldTwin, stream: true),
                pieces, pieceDelayMs: 1000, cancellation);
        }

        foreach (var count in counts)
        {
            for (var round = 1; round <= context.Options.Rounds; round++)
            {
                foreach (var target in BenchContext.Alternating())
                {
                    await using var server = target == Target.Gateway
                        ? await context.Servers.StartGatewayAsync(pieces, 30, cancellation)
                        : await context.Servers.StartBaselineAsync(answer, cancellation);
                    await HoldOnceAsync(context, report, server, count, pieces, round, cancellation);
                }
            }
            Summarize(report, count);
        }
    }

    private static async Task HoldOnceAsync(BenchContext context, ScenarioReport report, ServerProcess server, int count, int pieces,
        int round, CancellationToken cancellation)
    {
        var target = server.Target;
        var request = BenchRequests.Chat(server.Endpoint, BenchAgents.Hold, stream: true);
        var warm = new StreamHold(server.Endpoint, request, context.Quick ? 100 : 300);
        await warm.RunAsync(100, TimeSpan.FromSeconds(60), cancellation, stopAfterEvents: 2);
        report.Errors(target).Add(warm.Errors);
        await Settle(context, 1.5, cancellation);
        await RuntimeProbe.ForceGcAsync(server.Pid, cancellation);
        var heapBefore = await ReadHeapAsync(server, cancellation);
        await Settle(context, 0.5, cancellation);

        var before = server.Sample();
        var hold = new StreamHold(server.Endpoint, request, count);
        var peakWhileOpen = 0L;
        var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                var opened = hold.Opened == count;
                var sample = server.Sample();
                if (opened && hold.Finished == 0) peakWhileOpen = Math.Max(peakWhileOpen, sample.RssBytes);
                try
                {
                    await Task.Delay(250, sampling.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }, CancellationToken.None);
        var run = hold.RunAsync(ConnectParallelism, TimeSpan.FromSeconds(pieces + 120), cancellation);
        await hold.AllOpen.WaitAsync(cancellation);
        var atOpen = server.Sample();
        var openSeconds = (atOpen.Timestamp - before.Timestamp) / (double)Stopwatch.Frequency;
        // What the open streams hold, without the garbage of opening them: a full GC while all are open.
        var heapOpen = double.NaN;
        if (hold.Finished == 0)
        {
            await RuntimeProbe.ForceGcAsync(server.Pid, cancellation);
            heapOpen = await ReadHeapAsync(server, cancellation);
        }
        await run;
        var after = server.Sample();
        await sampling.CancelAsync();
        await sampler;
        sampling.Dispose();

        var peak = Math.Max(peakWhileOpen, atOpen.RssBytes);
        var perStreamKb = (peak - before.RssBytes) / 1024.0 / count;
        var seconds = (after.Timestamp - before.Timestamp) / (double)Stopwatch.Frequency;
        var cores = (after.CpuSeconds - before.CpuSeconds) / seconds;
        var n = $"n{count}";
        report.Errors(target).Add(hold.Errors);
        report.Figure($"{n} streams done", "of " + count, "0").Add(target, hold.Done);
        report.Figure($"{n} RSS per open stream", "KB", "0.0").Add(target, perStreamKb);
        report.Figure($"{n} GC heap per open stream", "KB", "0.0").Add(target, (heapOpen - heapBefore) / 1024.0 / count);
        report.Figure($"{n} RSS before", "MB", "0").Add(target, before.RssBytes / 1048576.0);
        report.Figure($"{n} RSS all open", "MB", "0").Add(target, peak / 1048576.0);
        report.Figure($"{n} CPU over the hold", "cores", "0.000").Add(target, cores);
        report.Figure($"{n} time to open all", "s", "0.0").Add(target, openSeconds);
        report.Figure($"{n} first event p99", "ms").Add(target, hold.FirstEvent().P99);
        report.Figure($"{n} hold time", "s", "0.0").Add(target, seconds);
        context.Log($"hold {count} round {round} {target}: {hold.Done}/{count} done, {perStreamKb:0.0} KB/stream, {cores:0.000} cores, opened in {openSeconds:0.0} s, errors {hold.Errors}");
    }

    private static async Task<double> ReadHeapAsync(ServerProcess server, CancellationToken cancellation) =>
        (await RuntimeProbe.ReadMetricsAsync(server.Pid, "System.Runtime", [HeapSize], cancellation))[HeapSize];

    private static void Summarize(ScenarioReport report, int count)
    {
        var n = $"n{count}";
        var done = report.Find($"{n} streams done")!;
        var leastDone = done.Gateway.Count == 0 ? 0 : (int)done.Gateway.Min();
        var perStream = report.Find($"{n} RSS per open stream")!;
        var cpu = report.Find($"{n} CPU over the hold")!;
        var kb = perStream.GatewayMedian ?? double.NaN;
        var heap = report.Find($"{n} GC heap per open stream")!;
        report.Summary.Add($"hold {count}: {leastDone}/{count} streams done, {F(kb, "0.0")} KB RSS per stream " +
            $"({F(perStream.Ratio ?? double.NaN)} of baseline; GC heap {F(heap.GatewayMedian ?? double.NaN, "0.0")} KB), " +
            $"CPU {F(cpu.GatewayMedian ?? double.NaN, "0.000")} cores ({F(cpu.Ratio ?? double.NaN)} of baseline)");
        if (count != 10_000) return;
        report.Target("hold 10000: every stream completes", leastDone == count, $"{leastDone}/{count} in the worst round");
        report.Target("hold 10000: < 20 KB of gateway RSS per open stream", kb < 20, $"{F(kb, "0.0")} KB");
    }
}
