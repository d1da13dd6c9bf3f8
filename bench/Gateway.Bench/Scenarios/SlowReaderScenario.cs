using Gateway.Bench.Load;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>
/// <c>slow-reader</c>: one client reads at 1 KB/s an answer the agent could make 100 MB long. The
/// server's RSS growth over the run shows nothing piles up; the gateway's own counter of characters
/// the agent produced (<c>gateway.agent.output.chars</c>) shows the backpressure reaches the agent:
/// it makes little more than the client has read.
/// </summary>
public sealed class SlowReaderScenario : Scenario
{
    private const int BytesPerSecond = 1024;
    private const string AgentOutput = "gateway.agent.output.chars";
    private const string HeapSize = "dotnet.gc.last_collection.heap.size";

    public override string Name => "slow-reader";

    public override async Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        var duration = TimeSpan.FromSeconds(context.Quick ? 2 : 30);
        report.Notes.Add($"one client reading {BytesPerSecond} B/s for {duration.TotalSeconds} s (socket receive buffer 4 KB); the agent could answer {BenchAgents.BigReplyChars / 1_000_000} MB in {BenchAgents.BigPieces} pieces");
        BaselineResponse answer;
        await using (var capture = await context.Servers.StartGatewayAsync(30, 30, cancellation))
        {
            answer = await BenchServers.CaptureAsync(capture.Endpoint, BenchRequests.Chat(capture.Endpoint, BenchAgents.BigTwin, stream: true),
                BenchAgents.BigPieces, pieceDelayMs: 0, cancellation);
        }

        for (var round = 1; round <= context.Options.Rounds; round++)
        {
            foreach (var target in BenchContext.Alternating())
            {
                await using var server = target == Target.Gateway
                    ? await context.Servers.StartGatewayAsync(30, 30, cancellation)
                    : await context.Servers.StartBaselineAsync(answer, cancellation);
                await ReadSlowlyAsync(context, report, server, duration, round, cancellation);
            }
        }

        var growth = report.Find("RSS growth (peak)")!;
        var produced = report.Find("agent produced")!;
        var read = report.Find("client read")!;
        var mb = growth.GatewayMedian ?? double.NaN;
        report.Summary.Add($"slow-reader: RSS {Signed(mb)} MB over {duration.TotalSeconds:0} s (baseline {Signed(growth.BaselineMedian ?? double.NaN)} MB); " +
            $"the agent produced {F(produced.GatewayMedian ?? double.NaN, "0")} KB while the client read {F(read.GatewayMedian ?? double.NaN, "0")} KB " +
            $"(the kernel held {F(report.Find("kernel send queue of the server's socket")?.GatewayMedian ?? double.NaN, "0")} KB in the server's send queue)");
        report.Target("slow-reader: gateway RSS grows < 5 MB over the run", mb < 5, $"{Signed(mb)} MB");
    }

    private static async Task ReadSlowlyAsync(BenchContext context, ScenarioReport report, ServerProcess server, TimeSpan duration, int round,
        CancellationToken cancellation)
    {
        var target = server.Target;
        var isGateway = target == Target.Gateway;
        var request = BenchRequests.Chat(server.Endpoint, BenchAgents.Big, stream: true);
        // Warm-up: the same path read fast for a few hundred KB, then dropped.
        var warm = new StreamHold(server.Endpoint, request, 4);
        await warm.RunAsync(4, TimeSpan.FromSeconds(60), cancellation, stopAfterEvents: 256);
        report.Errors(target).Add(warm.Errors);
        await Settle(context, 1.5, cancellation);
        await RuntimeProbe.ForceGcAsync(server.Pid, cancellation);
        var producedBefore = isGateway ? await ReadAgentOutputAsync(server, cancellation) : 0;
        var heapBefore = await ReadHeapAsync(server, cancellation);
        await Settle(context, 0.5, cancellation);
        var before = server.Sample();

        var peak = before.RssBytes;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.Sample().RssBytes);
                try
                {
                    await Task.Delay(250, sampling.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }, CancellationToken.None);

        ProcSample end = default;
        double producedAfter = 0;
        double heapAfter = 0;
        SlowReader.Result result;
        try
        {
            result = await SlowReader.RunAsync(server.Endpoint, request, BytesPerSecond, duration, async () =>
            {
                end = server.Sample();
                if (isGateway) producedAfter = await ReadAgentOutputAsync(server, cancellation);
                // What the server still holds (not garbage waiting for a collection).
                await RuntimeProbe.ForceGcAsync(server.Pid, cancellation);
                heapAfter = await ReadHeapAsync(server, cancellation);
            }, cancellation);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or HttpFramingException)
        {
            report.Errors(target).Add(ErrorCounts.Classify(ex, false));
            return;
        }
        finally
        {
            await sampling.CancelAsync();
            await sampler;
        }
        peak = Math.Max(peak, end.RssBytes);

        var growthMb = (peak - before.RssBytes) / 1048576.0;
        var readKb = result.BodyBytes / 1024.0;
        report.Figure("RSS growth (peak)", "MB").Add(target, growthMb);
        report.Figure("RSS growth (at the end)", "MB").Add(target, (end.RssBytes - before.RssBytes) / 1048576.0);
        report.Figure("GC heap growth, after a full GC", "MB").Add(target, (heapAfter - heapBefore) / 1048576.0);
        report.Figure("RSS before", "MB", "0").Add(target, before.RssBytes / 1048576.0);
        report.Figure("client read", "KB", "0.0").Add(target, readKb);
        report.Figure("client read rate", "KB/s", "0.00").Add(target, readKb / result.Seconds);
        if (result.ServerSendQueueBytes >= 0) report.Figure("kernel send queue of the server's socket", "KB", "0.0").Add(target, result.ServerSendQueueBytes / 1024.0);
        if (isGateway)
        {
            var producedKb = (producedAfter - producedBefore) / 1024.0;
            report.Figure("agent produced", "KB", "0.0").Add(target, producedKb);
            report.Figure("agent produced beyond what was read", "KB", "0.0").Add(target, producedKb - readKb);
        }
        context.Log($"slow-reader round {round} {target}: RSS +{growthMb:0.00} MB, read {readKb:0.0} KB{(isGateway ? $", agent produced {(producedAfter - producedBefore) / 1024:0.0} KB" : "")}");
    }

    private static async Task<double> ReadHeapAsync(ServerProcess server, CancellationToken cancellation) =>
        (await RuntimeProbe.ReadMetricsAsync(server.Pid, "System.Runtime", [HeapSize], cancellation))[HeapSize];

    private static async Task<double> ReadAgentOutputAsync(ServerProcess server, CancellationToken cancellation)
    {
        var values = await RuntimeProbe.ReadMetricsAsync(server.Pid, "Gateway", [AgentOutput], cancellation);
        return values[AgentOutput];
    }
}
