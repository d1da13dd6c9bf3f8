using System.Globalization;
using Gateway.Bench.Servers;

namespace Gateway.Bench;

/// <summary>The command line: <c>&lt;scenario&gt; [--quick] [--rounds N] [--duration S] [--gateway DLL] [--results DIR]</c>.</summary>
public sealed record BenchOptions
{
    public static readonly string[] Scenarios = ["nonstream", "stream", "hold", "slow-reader", "sessions", "durable"];

    public const string Usage = """
        Usage: Gateway.Bench <scenario> [options]
          scenarios: nonstream, stream, hold, slow-reader, sessions, durable, all
          --quick          a few seconds per scenario (what CI runs), one round
          --rounds N       A/B rounds per figure (default 3; medians are reported)
          --duration S     seconds measured per load run (default 5; quick 1)
          --gateway DLL    the gateway to start (default: src/Gateway.Api's Release build)
          --results DIR    where the JSON goes (default: bench/results)
          --no-results     don't write JSON
          --allow-errors   exit 0 even when requests failed (they are still counted and shown)
        Gateway.Bench baseline --port N --response FILE   (the baseline server; the harness starts it)
        """;

    public required string Scenario { get; init; }

    public bool Quick { get; init; }

    public int Rounds { get; init; } = 3;

    public double DurationSeconds { get; init; } = 5;

    public string GatewayDll { get; init; } = BenchServers.DefaultGatewayDll;

    public string ResultsDirectory { get; init; } = BenchServers.DefaultResultsDirectory;

    public bool WriteResults { get; init; } = true;

    /// <summary>Failed requests are reported either way; without this they also make the exit code 1.</summary>
    public bool AllowErrors { get; init; }

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0) throw new ArgumentException("no scenario given");
        var scenario = args[0];
        if (scenario != "all" && !Scenarios.Contains(scenario)) throw new ArgumentException($"unknown scenario '{scenario}'");
        var quick = args.Contains("--quick");
        var options = new BenchOptions
        {
            Scenario = scenario,
            Quick = quick,
            Rounds = quick ? 1 : 3,
            DurationSeconds = quick ? 1 : 5,
        };
        for (var i = 1; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            options = args[i] switch
            {
                "--quick" => options,
                "--no-results" => options with { WriteResults = false },
                "--allow-errors" => options with { AllowErrors = true },
                "--rounds" => options with { Rounds = int.Parse(Required(value, "--rounds"), CultureInfo.InvariantCulture) },
                "--duration" => options with { DurationSeconds = double.Parse(Required(value, "--duration"), CultureInfo.InvariantCulture) },
                "--gateway" => options with { GatewayDll = Path.GetFullPath(Required(value, "--gateway")) },
                "--results" => options with { ResultsDirectory = Path.GetFullPath(Required(value, "--results")) },
                _ => throw new ArgumentException($"unknown option '{args[i]}'"),
            };
            if (args[i] is "--rounds" or "--duration" or "--gateway" or "--results") i++;
        }
        if (options.Rounds < 1) throw new ArgumentException("--rounds must be at least 1");
        return options;
    }

    private static string Required(string? value, string name) => value ?? throw new ArgumentException($"{name} needs a value");
}
