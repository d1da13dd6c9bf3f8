using System.Diagnostics;
using System.Globalization;
using System.Text;
using Gateway.Bench.Load;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>
/// <c>durable</c>: what keeping sessions in a journal costs. Three gateways, one per store (memory, the
/// baseline; SQLite, the file in the process's state folder; PostgreSQL, a throwaway cluster the bench
/// starts, when installed), each loaded in turn per round with sessions with memory at concurrency 16:
/// distinct users, 5 non-streamed turns each to the built-in agent, a user's turns one after the other
/// on one connection, the next user as soon as one is done. Every turn is written to the journal before
/// its answer ends, so its latency holds the write. Reported: each store's turns/s as a ratio of
/// memory's, and its p99 over memory's. Then recovery on SQLite: sessions of 200 entries (100 turns)
/// that passivated, the first turn after (which recovers the session from the journal) against the turn
/// right after it.
/// </summary>
public sealed class DurableScenario : Scenario
{
    private const int Concurrency = 16;
    private const int TurnsPerUser = 5;
    private const int RecoveryTurns = 100;
    private const string LiveSessions = "gateway.sessions.live";

    public override string Name => "durable";

    public override async Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        report.Columns = ["store", "memory"];
        report.Notes.Add($"\"store\" is the gateway on SQLite or PostgreSQL, \"memory\" the same gateway on provider 'memory' (the baseline here); ratio = store / memory");
        report.Notes.Add($"c{Concurrency}: distinct users, {TurnsPerUser} non-streamed turns each (in a row, one connection), a new user as one is done; " +
            "every turn is written to the journal before its answer ends");
        report.Notes.Add($"the state folders and the PostgreSQL cluster are on {Path.GetTempPath()} (fsync as the stores do it: SQLite in WAL mode, PostgreSQL's defaults)");

        var users = 0L;
        var stores = new List<(string Name, SessionStore Store)> { ("memory", SessionStore.Memory), ("sqlite", SessionStore.Sqlite) };
        PostgresCluster? postgres = null;
        string? postgresSkipped = null;
        try
        {
            postgres = await PostgresCluster.StartAsync(cancellation);
            if (postgres is null) postgresSkipped = "skipped: PostgreSQL not installed";
            else
            {
                stores.Add(("postgresql", SessionStore.PostgreSql(postgres.ConnectionString)));
                context.Log($"{Name}: PostgreSQL on 127.0.0.1:{postgres.Port}");
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            postgresSkipped = $"skipped: PostgreSQL did not start: {ex.Message.Split('\n')[0]}";
            report.Errors(Target.Gateway).Add("postgresql did not start");
        }

        var servers = new Dictionary<string, ServerProcess>();
        try
        {
            foreach (var (name, store) in stores)
            {
                var server = await context.Servers.StartGatewayAsync(30, 30, cancellation, store);
                servers[name] = server;
                // Memory works on each store: the third turn of a user sees the two before it.
                await CheckMemoryAsync(server, $"durable-check-{name}", 3, cancellation);
            }

            // JIT and tiered PGO, the stores' connection pools and statements: load each before measuring.
            var warmup = TimeSpan.FromSeconds(context.Quick ? 2 : 10);
            foreach (var (name, _) in stores)
            {
                context.Log($"{Name}: warming up the gateway on {name}");
                var run = await ClosedLoop.RunAsync(Plan(servers[name], TimeSpan.Zero, warmup, () => Interlocked.Increment(ref users)), cancellation);
                report.Errors(Target.Gateway).Add(run.Errors);
            }

            for (var round = 1; round <= context.Options.Rounds; round++)
            {
                foreach (var (name, _) in stores)
                {
                    var server = servers[name];
                    var before = server.Sample();
                    var run = await ClosedLoop.RunAsync(Plan(server, TimeSpan.FromSeconds(context.Quick ? 0.3 : 1), context.Options.Duration,
                        () => Interlocked.Increment(ref users)), cancellation);
                    var after = server.Sample();
                    report.Errors(Target.Gateway).Add(run.Errors);
                    Record(report, name, [.. stores.Skip(1).Select(store => store.Name)], run, before, after);
                    context.Log($"{Name} round {round} {name}: {run.RequestsPerSecond:0} turns/s, p99 {run.Latency.PercentileMs(99):0.00} ms, errors {run.Errors.Total}");
                }
            }
        }
        finally
        {
            foreach (var server in servers.Values) await server.DisposeAsync();
            if (postgres is not null) await postgres.DisposeAsync();
        }

        foreach (var (name, _) in stores.Skip(1)) Summarize(report, name);
        if (postgresSkipped is not null) report.Summary.Add($"durable c{Concurrency} postgresql: {postgresSkipped}");

        await RecoveryAsync(context, report, cancellation);
    }

    /// <summary>Each worker: a user's 5 turns in a row, then a new user's.</summary>
    private static LoadPlan Plan(ServerProcess server, TimeSpan warmup, TimeSpan duration, Func<long> nextUser) =>
        new(server.Endpoint, _ => throw new InvalidOperationException("per worker"), false, Concurrency, warmup, duration)
        {
            PerWorker = () =>
            {
                byte[]? request = null;
                return index =>
                {
                    if (index % TurnsPerUser == 0) request = Turn(server, string.Create(CultureInfo.InvariantCulture, $"durable-{nextUser():D8}"));
                    return request!;
                };
            },
        };

    private static byte[] Turn(ServerProcess server, string user) => BenchRequests.Chat(server.Endpoint, BenchAgents.Fast, stream: false, user: user);

    /// <summary>A store's figures in its "store" column; memory's go in every durable store's "memory" column.</summary>
    private static void Record(ScenarioReport report, string store, string[] durable, LoadResult run, ProcSample before, ProcSample after)
    {
        var latency = run.Latency.Summary();
        var seconds = (after.Timestamp - before.Timestamp) / (double)Stopwatch.Frequency;
        var cores = (after.CpuSeconds - before.CpuSeconds) / seconds;
        foreach (var (figureStore, target) in store == "memory" ? durable.Select(name => (name, Target.Baseline)) : [(store, Target.Gateway)])
        {
            report.Figure($"{figureStore} c{Concurrency} turns", "per s", "0").Add(target, run.RequestsPerSecond);
            report.Figure($"{figureStore} c{Concurrency} latency p50", "ms").Add(target, latency.P50);
            report.Figure($"{figureStore} c{Concurrency} latency p99", "ms").Add(target, latency.P99);
            report.Figure($"{figureStore} c{Concurrency} latency p99.9", "ms").Add(target, latency.P999);
            report.Figure($"{figureStore} c{Concurrency} server CPU", "cores").Add(target, cores);
            if (run.RequestsPerSecond > 0) report.Figure($"{figureStore} c{Concurrency} server CPU per turn", "us", "0.0").Add(target, cores / run.RequestsPerSecond * 1e6);
        }
    }

    private void Summarize(ScenarioReport report, string store)
    {
        var c = $"c{Concurrency}";
        var turns = report.Find($"{store} {c} turns")!;
        var p99 = report.Find($"{store} {c} latency p99")!;
        var ratio = turns.Ratio ?? double.NaN;
        var added = (p99.GatewayMedian ?? double.NaN) - (p99.BaselineMedian ?? double.NaN);
        report.Summary.Add($"durable {c} {store}: {F(ratio)} of memory's turns/s ({F(turns.GatewayMedian ?? double.NaN, "0")} against {F(turns.BaselineMedian ?? double.NaN, "0")}), " +
            $"p99 {Signed(added)} ms ({Ms(p99.GatewayMedian ?? double.NaN)} against {Ms(p99.BaselineMedian ?? double.NaN)} ms)");
        if (store != "sqlite") return;
        report.Target($"durable {c}: SQLite >= 0.7 of memory's turns/s", ratio >= 0.7, F(ratio));
        report.Target($"durable {c}: SQLite p99 added < 2 ms", added < 2, $"{Signed(added)} ms");
    }

    /// <summary>
    /// Recovery on SQLite, in a gateway of its own whose sessions passivate after 60 ms idle
    /// (<c>session.idleMinutes: 0.001</c>): sessions of 100 turns (200 entries, max-history-entries; the
    /// journal then holds the snapshot taken at turn 100, the gateway snapshots every 50 turns, and no event after it), all passivated (the live
    /// gauge back where it was). Per session: a stateless request (wakes the idle process; touches no session),
    /// then the first turn (a new session actor whose journal child reads the snapshot from SQLite before the
    /// turn runs, then writes the turn), then at once a second turn (the session is live: only the write).
    /// The figure is the first minus the second, per session; its median is reported.
    /// </summary>
    private async Task RecoveryAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation)
    {
        var samples = context.Quick ? 3 : 15;
        await using var server = await context.Servers.StartGatewayAsync(30, 0.001, cancellation, SessionStore.Sqlite);
        var initial = await LiveAsync(server, cancellation);
        context.Log($"{Name}: recovery: {samples} sessions of {RecoveryTurns} turns on SQLite");
        var users = Enumerable.Range(0, samples).Select(i => string.Create(CultureInfo.InvariantCulture, $"recover-{i:D3}")).ToArray();
        await Task.WhenAll(users.Select(user => CheckMemoryAsync(server, user, RecoveryTurns, cancellation)));

        // Every session passivated: the live gauge back at what it read before (the process's own sessions).
        var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
        var live = double.NaN;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(200, cancellation);
            live = await LiveAsync(server, cancellation);
            if (live <= initial) break;
        }
        if (live > initial) report.Notes.Add($"recovery: {live - initial} of {samples} sessions still live after 30 s: their first turn did not recover");

        using var connection = await HttpConnection.OpenAsync(server.Endpoint, cancellation);
        var stateless = BenchRequests.Chat(server.Endpoint, BenchAgents.Fast, stream: false);
        var expected = $"holds {RecoveryTurns} earlier turn(s)";
        foreach (var user in users)
        {
            await TimedAsync(connection, stateless, cancellation);
            var request = Turn(server, user);
            var (first, firstBody) = await TimedAsync(connection, request, cancellation);
            var (next, nextBody) = await TimedAsync(connection, request, cancellation);
            if (!firstBody.Contains(expected, StringComparison.Ordinal) || !nextBody.Contains(expected, StringComparison.Ordinal))
                throw new InvalidOperationException($"recovery: {user}'s answer after passivation does not say it {expected}: {firstBody}");
            report.Figure("sqlite 200 entries: first turn after passivation", "ms").Add(Target.Gateway, first);
            report.Figure("sqlite 200 entries: the turn after it", "ms").Add(Target.Gateway, next);
            report.Figure("sqlite 200 entries: recovery (first - next)", "ms").Add(Target.Gateway, first - next);
            // Passivation of this session (60 ms idle) before the next one's turn.
            await Task.Delay(200, cancellation);
        }
        var added = report.Find("sqlite 200 entries: recovery (first - next)")!.GatewayMedian ?? double.NaN;
        report.Summary.Add($"durable recovery (sqlite, a session of 200 entries = {RecoveryTurns} turns, after passivation, no restart): {Signed(added)} ms " +
            $"(median of {samples} sessions: its first turn after passivation, {Ms(report.Find("sqlite 200 entries: first turn after passivation")!.GatewayMedian ?? double.NaN)} ms, " +
            $"minus the turn right after, {Ms(report.Find("sqlite 200 entries: the turn after it")!.GatewayMedian ?? double.NaN)} ms)");
        report.Notes.Add("recovery: sessions of 100 turns (200 entries, the most a session keeps) on SQLite, passivated after 60 ms idle (session.idleMinutes 0.001) " +
            "in a gateway of their own; the journal holds the snapshot taken at turn 100 (one every 50 turns) and no event after it to replay. Per session, on one connection: a stateless " +
            "request (wakes the process; touches no session), then the first turn (timed: a new session actor, its journal child reads the snapshot from SQLite, " +
            "the turn runs and is written), then the next turn at once (timed: the session is live, only the write). Recovery = first - next, per session; " +
            "the median. The process stays up (its connection pool and SQLite's page cache warm): a restart would add opening the store and a cold cache.");
        report.Target("durable: recovering a session of 200 entries adds < 10 ms to its first turn", added < 10, $"{Signed(added)} ms");
    }

    private static async Task<double> LiveAsync(ServerProcess server, CancellationToken cancellation) =>
        (await RuntimeProbe.ReadMetricsAsync(server.Pid, "Gateway", [LiveSessions], cancellation))[LiveSessions];

    /// <summary><paramref name="turns"/> turns of one user in a row; the last one's answer must name the turns before it.</summary>
    private static async Task CheckMemoryAsync(ServerProcess server, string user, int turns, CancellationToken cancellation)
    {
        using var connection = await HttpConnection.OpenAsync(server.Endpoint, cancellation);
        var request = Turn(server, user);
        var body = "";
        for (var i = 0; i < turns; i++) (_, body) = await TimedAsync(connection, request, cancellation);
        var expected = turns == 1 ? "holds no earlier turns" : $"holds {turns - 1} earlier turn(s)";
        if (!body.Contains(expected, StringComparison.Ordinal))
            throw new InvalidOperationException($"{user}: turn {turns} should say the session {expected}: {body}");
    }

    /// <summary>One request on a keep-alive connection: milliseconds from sending to the end of the answer, and the answer.</summary>
    private static async Task<(double Ms, string Body)> TimedAsync(HttpConnection connection, byte[] request, CancellationToken cancellation)
    {
        var sink = new CapturingSink();
        var started = Stopwatch.GetTimestamp();
        await connection.SendAsync(request, cancellation);
        var head = await connection.ReadResponseAsync(sink, cancellation);
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var body = Encoding.UTF8.GetString(sink.Body);
        if (head.Status != 200) throw new InvalidOperationException($"the gateway answered {head.Status}: {body}");
        return (ms, body);
    }
}
