using System.Diagnostics.Metrics;
using Gateway.Agents;

namespace Gateway.Actors;

/// <summary>
/// Live counts of sessions and runs, exported as OpenTelemetry-compatible gauges on the "Gateway"
/// meter and readable directly (tests, health output).
/// </summary>
public sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "Gateway";

    private readonly Meter _meter = new(MeterName);
    private long _liveSessions;
    private long _activeRuns;
    private long _runsStarted;
    private long _runsFailed;
    private long _agentOutputChars;
    private long _waitingForRunSlot;

    public GatewayMetrics()
    {
        _meter.CreateObservableGauge("gateway.sessions.live", () => LiveSessions, description: "Sessions alive in memory");
        _meter.CreateObservableGauge("gateway.runs.active", () => ActiveRuns, description: "Agent runs in progress");
        _meter.CreateObservableGauge("gateway.runs.waiting", () => WaitingForRunSlot,
            description: "Turns waiting for a run slot (agents.defaults.maxConcurrent)");
        _meter.CreateObservableCounter("gateway.runs.started", () => RunsStarted, description: "Agent runs started");
        _meter.CreateObservableCounter("gateway.runs.failed", () => RunsFailed, description: "Agent runs that crashed or ended in an error");
        _meter.CreateObservableCounter("gateway.agent.output.chars", () => AgentOutputChars, unit: "{char}",
            description: "Characters of answer text pulled from the agents by the runs' graphs");
    }

    public long LiveSessions => Interlocked.Read(ref _liveSessions);

    public long ActiveRuns => Interlocked.Read(ref _activeRuns);

    /// <summary>Turns waiting for a run slot now (only when runs are capped).</summary>
    public long WaitingForRunSlot => Interlocked.Read(ref _waitingForRunSlot);

    public long RunsStarted => Interlocked.Read(ref _runsStarted);

    public long RunsFailed => Interlocked.Read(ref _runsFailed);

    /// <summary>Answer text the agents have produced so far; with backpressure it tracks what clients read.</summary>
    public long AgentOutputChars => Interlocked.Read(ref _agentOutputChars);

    internal void SessionStarted() => Interlocked.Increment(ref _liveSessions);

    internal void SessionStopped() => Interlocked.Decrement(ref _liveSessions);

    internal void RunStarted()
    {
        Interlocked.Increment(ref _runsStarted);
        Interlocked.Increment(ref _activeRuns);
    }

    internal void RunStopped() => Interlocked.Decrement(ref _activeRuns);

    internal void SetWaitingForRunSlot(int count) => Interlocked.Exchange(ref _waitingForRunSlot, count);

    internal void RunFailed() => Interlocked.Increment(ref _runsFailed);

    internal void AgentOutput(int chars) => Interlocked.Add(ref _agentOutputChars, chars);

    /// <summary><see cref="AgentOutput"/> as one delegate for every run (a method group makes a new one each time, held by the run).</summary>
    internal Action<int> AgentOutputCounter => _agentOutputCounter ??= AgentOutput;

    private Action<int>? _agentOutputCounter;

    public void Dispose() => _meter.Dispose();
}
