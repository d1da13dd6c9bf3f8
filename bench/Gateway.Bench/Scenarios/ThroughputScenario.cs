using System.Diagnostics;
using Gateway.Bench.Load;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>
/// <c>nonstream</c> (concurrency 1, 16, 64) and <c>stream</c> (16, 64; answers of 20 pieces):
/// closed-loop requests per second and latency, the gateway and the baseline alternating per round.
/// Both servers stay up (and warm) for the whole scenario; only one is loaded at a time.
/// </summary>
public sealed class ThroughputScenario(bool streaming) : Scenario
{
    public override string Name => streaming ? "stream" : "nonstream";

    private int[] Concurrencies => streaming ? [16, 64] : [1, 16, 64];

    public override async Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        var options = context.Options;
        await using var gateway = await context.Servers.StartGatewayAsync(holdPieces: 30, sessionIdleMinutes: 30, cancellation);
        var answer = await BenchServers.CaptureAsync(gateway.Endpoint, BenchRequests.Chat(gateway.Endpoint, BenchAgents.Fast, streaming),
            BenchAgents.StreamPieces, pieceDelayMs: 0, cancellation);
        await using var baseline = await context.Servers.StartBaselineAsync(answer, cancellation);
        int? expectedEvents = streaming ? answer.Frames.Length : null;
        var servers = new Dictionary<Target, ServerProcess> { [Target.Gateway] = gateway, [Target.Baseline] = baseline };
        var requests = servers.ToDictionary(pair => pair.Key, pair => BenchRequests.Chat(pair.Value.Endpoint, BenchAgents.Fast, streaming));
        report.Notes.Add($"{answer.Frames.Sum(f => f.Length)} body bytes per answer{(streaming ? $" in {answer.Frames.Length} events" : "")}; the baseline sends the gateway's bytes");

        // JIT, tiered compilation, thread pool growth: load both servers before measuring. Tiered PGO takes
        // the gateway's code (much more of it than the baseline's) through an instrumented tier first; a
        // measurement taken before that settles reads the JIT's work, not the gateway's (a 3 s warm-up
        // read a third of the steady throughput).
        var warmup = TimeSpan.FromSeconds(context.Quick ? 4 : 10);
        foreach (var target in BenchContext.Alternating())
        {
            context.Log($"{Name}: warming up the {target}");
            var run = await ClosedLoop.RunAsync(new LoadPlan(servers[target].Endpoint, _ => requests[target], streaming, 16,
                TimeSpan.Zero, warmup, ExpectedEvents: expectedEvents), cancellation);
            report.Errors(target).Add(run.Errors);
        }

        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var concurrency in Concurrencies)
            {
                foreach (var target in BenchContext.Alternating())
                {
                    var server = servers[target];
                    var plan = new LoadPlan(server.Endpoint, _ => requests[target], streaming, concurrency,
                        TimeSpan.FromSeconds(context.Quick ? 0.3 : 1), options.Duration, ExpectedEvents: expectedEvents);
                    var before = server.Sample();
                    var run = await ClosedLoop.RunAsync(plan, cancellation);
                    var after = server.Sample();
                    report.Errors(target).Add(run.Errors);
                    Record(report, target, concurrency, run, before, after);
                    context.Log($"{Name} round {round} c{concurrency} {target}: {run.RequestsPerSecond:0} req/s, p99 {run.Latency.PercentileMs(99):0.00} ms, errors {run.Errors.Total}");
                }
            }
        }

        foreach (var concurrency in Concurrencies) Summarize(report, concurrency);
    }

    private void Record(ScenarioReport report, Target target, int concurrency, LoadResult run, ProcSample before, ProcSample after)
    {
        var c = $"c{concurrency}";
        report.Figure($"{c} throughput", "req/s", "0").Add(target, run.RequestsPerSecond);
        var latency = run.Latency.Summary();
        var label = streaming ? "total time" : "latency";
        report.Figure($"{c} {label} p50", "ms").Add(target, latency.P50);
        report.Figure($"{c} {label} p90", "ms").Add(target, latency.P90);
        report.Figure($"{c} {label} p99", "ms").Add(target, latency.P99);
        report.Figure($"{c} {label} p99.9", "ms").Add(target, latency.P999);
        if (streaming)
        {
            var first = run.FirstEvent.Summary();
            var content = run.FirstContent.Summary();
            report.Figure($"{c} first event p50", "ms").Add(target, first.P50);
            report.Figure($"{c} first event p99", "ms").Add(target, first.P99);
            report.Figure($"{c} first event p99.9", "ms").Add(target, first.P999);
            report.Figure($"{c} first content p50", "ms").Add(target, content.P50);
            report.Figure($"{c} first content p99", "ms").Add(target, content.P99);
        }
        // Server CPU over the whole load run (warm-up included), per measured request.
        var seconds = (after.Timestamp - before.Timestamp) / (double)Stopwatch.Frequency;
        var cores = (after.CpuSeconds - before.CpuSeconds) / seconds;
        report.Figure($"{c} server CPU", "cores").Add(target, cores);
        if (run.RequestsPerSecond > 0) report.Figure($"{c} server CPU per request", "us", "0.0").Add(target, cores / run.RequestsPerSecond * 1e6);
        report.Figure($"{c} server RSS", "MB", "0").Add(target, after.RssBytes / 1048576.0);
    }

    private void Summarize(ScenarioReport report, int concurrency)
    {
        var c = $"c{concurrency}";
        var throughput = report.Find($"{c} throughput")!;
        var ratio = throughput.Ratio ?? double.NaN;
        string line;
        double added;
        if (streaming)
        {
            var first = report.Find($"{c} first event p99")!;
            added = (first.GatewayMedian ?? double.NaN) - (first.BaselineMedian ?? double.NaN);
            line = $"stream {c}: {F(ratio)} of baseline req/s, first event p99 {Signed(added)} ms";
        }
        else
        {
            var p99 = report.Find($"{c} latency p99")!;
            added = (p99.GatewayMedian ?? double.NaN) - (p99.BaselineMedian ?? double.NaN);
            line = $"nonstream {c}: {F(ratio)} of baseline req/s, p99 {Signed(added)} ms";
        }
        report.Summary.Add(line);
        if (concurrency != 16) return;
        report.Target($"{Name} c16 >= 0.5 of the baseline's req/s", ratio >= 0.5, F(ratio));
        if (streaming) report.Target("stream c16 first event p99 within 1 ms of the baseline", added <= 1, $"{Signed(added)} ms");
        else report.Target("nonstream c16 p99 added latency < 1 ms", added < 1, $"{Signed(added)} ms");
    }
}
