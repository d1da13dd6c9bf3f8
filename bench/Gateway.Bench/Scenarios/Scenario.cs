using System.Diagnostics;
using System.Globalization;
using Gateway.Bench.Reporting;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Scenarios;

/// <summary>What every scenario gets: the options, the servers, and a log line writer.</summary>
public sealed class BenchContext(BenchOptions options, BenchServers servers)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public BenchOptions Options { get; } = options;

    public BenchServers Servers { get; } = servers;

    public bool Quick => Options.Quick;

    public void Log(string message) =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:0.0}s] {message}"));

    /// <summary>The gateway first, then the baseline (A B), every round.</summary>
    public static IEnumerable<Target> Alternating() => [Target.Gateway, Target.Baseline];
}

public abstract class Scenario
{
    public abstract string Name { get; }

    public abstract Task RunAsync(BenchContext context, ScenarioReport report, CancellationToken cancellation);

    public static Scenario Create(string name) => name switch
    {
        "nonstream" => new ThroughputScenario(streaming: false),
        "stream" => new ThroughputScenario(streaming: true),
        "hold" => new HoldScenario(),
        "slow-reader" => new SlowReaderScenario(),
        "sessions" => new SessionsScenario(),
        "durable" => new DurableScenario(),
        _ => throw new ArgumentException($"unknown scenario '{name}'"),
    };

    protected static string Ms(double value) => value.ToString("0.00", CultureInfo.InvariantCulture);

    protected static string Signed(double value) => (value >= 0 ? "+" : "") + value.ToString("0.00", CultureInfo.InvariantCulture);

    protected static string F(double value, string format = "0.00") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Waits out a short pause (a server settling after a load); shorter in a quick run.</summary>
    protected static Task Settle(BenchContext context, double seconds, CancellationToken cancellation) =>
        Task.Delay(TimeSpan.FromSeconds(context.Quick ? Math.Min(seconds, 0.3) : seconds), cancellation);
}
