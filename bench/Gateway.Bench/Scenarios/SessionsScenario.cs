using System.Diagnostics;
using System.Globalization;
using Gateway.Bench.Load;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>
/// <c>sessions</c>: 100,000 requests, each with its own <c>user</c>, so each leaves a live session
/// (with its memory of one turn) behind, idle until passivation (<c>session.idleMinutes</c>, short in
/// the bench config). After a full GC: RSS and GC heap per live session; then, once the gateway's
/// <c>gateway.sessions.live</c> gauge reads 0, the same after passivation. The baseline answers the
/// same requests and keeps nothing: its figures are the noise floor of the measurement. The gateway runs
/// on the memory store (<c>gateway.sessions.persistence.provider: memory</c>, as before durable sessions,
/// so the figure compares with earlier runs); a third server per round, the gateway on SQLite (its
/// default), measures the same for durable sessions (a live session then also holds its journal child)
/// over fewer sessions (10,000; creating them is slower), without the passivation part.
/// </summary>
public sealed class SessionsScenario : Scenario
{
    private const string LiveSessions = "gateway.sessions.live";
    private const string HeapSize = "dotnet.gc.last_collection.heap.size";

    public override string Name => "sessions";

    public override async Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        var count = context.Quick ? 2_000 : 100_000;
        var idleMinutes = context.Quick ? 0.03 : 1.0;
        // Fewer on SQLite: a new durable session reads the journal (recovery) before its first turn, and those
        // reads collide with the writes (measured at about 100-250 new sessions per second at concurrency 32).
        var durableCount = context.Quick ? 500 : 10_000;
        report.Notes.Add($"{count} sessions (distinct `user`), created at concurrency 32; session.idleMinutes {idleMinutes.ToString(CultureInfo.InvariantCulture)}; " +
            "the gateway on the memory store");
        report.Notes.Add($"sqlite: the gateway on SQLite (the default store; the file in the process's state folder), {durableCount} of the same requests, " +
            "session.idleMinutes 30, no passivation; 200 sessions made before the first reading warm the journal up (live in both readings)");
        BaselineResponse answer;
        await using (var capture = await context.Servers.StartGatewayAsync(30, idleMinutes, cancellation, SessionStore.Memory))
        {
            answer = await BenchServers.CaptureAsync(capture.Endpoint, User(capture, 0), 0, 0, cancellation);
        }

        for (var round = 1; round <= context.Options.Rounds; round++)
        {
            foreach (var target in BenchContext.Alternating())
            {
                await using var server = target == Target.Gateway
                    ? await context.Servers.StartGatewayAsync(30, idleMinutes, cancellation, SessionStore.Memory)
                    : await context.Servers.StartBaselineAsync(answer, cancellation);
                await SessionsOnceAsync(context, report, server, count, idleMinutes, round, durable: false, cancellation);
            }
            // Durable sessions: no passivation in this one, so they stay live for as long as the creating takes.
            await using var sqlite = await context.Servers.StartGatewayAsync(30, 30, cancellation, SessionStore.Sqlite);
            await SessionsOnceAsync(context, report, sqlite, durableCount, 30, round, durable: true, cancellation);
        }

        var live = report.Find("RSS per live session")!;
        var heap = report.Find("GC heap per live session")!;
        var passivated = report.Find("RSS per session after passivation");
        var kb = live.GatewayMedian ?? double.NaN;
        report.Summary.Add($"sessions: {F(kb)} KB RSS per live session (GC heap {F(heap.GatewayMedian ?? double.NaN)} KB), " +
            $"{F(passivated?.GatewayMedian ?? double.NaN)} KB after passivation; baseline {F(live.BaselineMedian ?? double.NaN)} KB per request");
        report.Target("sessions: < 3 KB per idle live session", kb < 3, $"{F(kb)} KB");
        var durable = report.Find($"{Sqlite}RSS per live session")!;
        report.Summary.Add($"sessions on sqlite: {F(durable.GatewayMedian ?? double.NaN)} KB RSS per live session (GC heap " +
            $"{F(report.Find($"{Sqlite}GC heap per live session")!.GatewayMedian ?? double.NaN)} KB), created at " +
            $"{F(report.Find($"{Sqlite}sessions created")!.GatewayMedian ?? double.NaN, "0")}/s (memory store: {F(live.GatewayMedian ?? double.NaN)} KB, " +
            $"{F(report.Find("sessions created")!.GatewayMedian ?? double.NaN, "0")}/s)");
    }

    private const string Sqlite = "sqlite: ";

    private static byte[] User(ServerProcess server, long index) =>
        BenchRequests.Chat(server.Endpoint, BenchAgents.Fast, stream: false, user: string.Create(CultureInfo.InvariantCulture, $"bench-user-{index:D7}"));

    /// <param name="durable">The gateway on SQLite: its figures are named "sqlite: …", and it is not waited for to passivate.</param>
    private static async Task SessionsOnceAsync(BenchContext context, ScenarioReport report, ServerProcess server, int count, double idleMinutes,
        int round, bool durable, CancellationToken cancellation)
    {
        var target = server.Target;
        var isGateway = target == Target.Gateway;
        var prefix = durable ? Sqlite : "";
        // Warm-up: stateless requests (no user), which leave no session behind.
        var stateless = BenchRequests.Chat(server.Endpoint, BenchAgents.Fast, stream: false);
        var warm = await ClosedLoop.RunAsync(new LoadPlan(server.Endpoint, _ => stateless, false, 16, TimeSpan.Zero, TimeSpan.Zero,
            TotalRequests: context.Quick ? 2_000 : 10_000), cancellation);
        report.Errors(target).Add(warm.Errors);
        if (durable)
        {
            // The journal's first writes open its connections and prepare its statements: before the "before" reading
            // (these sessions are live in both readings).
            var journalWarm = await ClosedLoop.RunAsync(new LoadPlan(server.Endpoint, index => User(server, 9_000_000 + index), false, 16,
                TimeSpan.Zero, TimeSpan.Zero, TotalRequests: 200), cancellation);
            report.Errors(target).Add(journalWarm.Errors);
        }
        var (before, beforeMetrics) = await MeasureAsync(context, server, isGateway, cancellation);

        // Each request is made as it is sent: the user id differs per request.
        var created = await ClosedLoop.RunAsync(new LoadPlan(server.Endpoint, index => User(server, index), false, 32, TimeSpan.Zero, TimeSpan.Zero,
            TotalRequests: count), cancellation);
        report.Errors(target).Add(created.Errors);
        var createdAt = Stopwatch.GetTimestamp();
        var (live, liveMetrics) = await MeasureAsync(context, server, isGateway, cancellation);
        var liveCount = isGateway ? liveMetrics[LiveSessions] - beforeMetrics[LiveSessions] : count;

        report.Figure($"{prefix}sessions created", "per s", "0").Add(target, created.RequestsPerSecond);
        report.Figure($"{prefix}live sessions after creating", "", "0").Add(target, liveCount);
        report.Figure($"{prefix}RSS per live session", "KB").Add(target, (live.RssBytes - before.RssBytes) / 1024.0 / liveCount);
        report.Figure($"{prefix}GC heap per live session", "KB").Add(target, (liveMetrics[HeapSize] - beforeMetrics[HeapSize]) / 1024.0 / liveCount);
        report.Figure($"{prefix}RSS with live sessions", "MB", "0").Add(target, live.RssBytes / 1048576.0);
        var line = $"sessions round {round} {(durable ? "gateway on sqlite" : target)}: {count} in {created.Seconds:0.0} s, live {liveCount:0}, " +
            $"RSS +{(live.RssBytes - before.RssBytes) / 1048576.0:0.0} MB";
        if (isGateway && !durable)
        {
            // Passivation: every session idle for idleMinutes stops itself; wait for the gauge to read 0.
            var deadline = createdAt + (long)((idleMinutes * 60 + 90) * Stopwatch.Frequency);
            var remaining = liveMetrics[LiveSessions];
            while (remaining > 0 && Stopwatch.GetTimestamp() < deadline)
            {
                await Settle(context, 1, cancellation);
                remaining = (await RuntimeProbe.ReadMetricsAsync(server.Pid, "Gateway", [LiveSessions], cancellation))[LiveSessions];
            }
            if (remaining > 0) report.Notes.Add($"round {round}: {remaining} sessions still live {idleMinutes * 60 + 90:0} s after creation");
            var (passivated, passivatedMetrics) = await MeasureAsync(context, server, isGateway, cancellation);
            report.Figure("RSS per session after passivation", "KB").Add(target, (passivated.RssBytes - before.RssBytes) / 1024.0 / count);
            report.Figure("GC heap per session after passivation", "KB").Add(target, (passivatedMetrics[HeapSize] - beforeMetrics[HeapSize]) / 1024.0 / count);
            report.Figure("live sessions after passivation", "", "0").Add(target, passivatedMetrics[LiveSessions]);
            line += $", after passivation {passivatedMetrics[LiveSessions]:0} live, RSS +{(passivated.RssBytes - before.RssBytes) / 1048576.0:0.0} MB";
        }
        context.Log(line);
    }

    /// <summary>A full GC, then RSS and the counters (the GC heap; for the gateway also its live sessions).</summary>
    private static async Task<(ProcSample Sample, IReadOnlyDictionary<string, double> Metrics)> MeasureAsync(BenchContext context, ServerProcess server,
        bool isGateway, CancellationToken cancellation)
    {
        await Settle(context, 1, cancellation);
        await RuntimeProbe.ForceGcAsync(server.Pid, cancellation);
        var metrics = await RuntimeProbe.ReadMetricsAsync(server.Pid, isGateway ? "Gateway;System.Runtime" : "System.Runtime",
            isGateway ? [LiveSessions, HeapSize] : [HeapSize], cancellation);
        return (server.Sample(), metrics);
    }
}
