using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Bench.Load;
using Gateway.Bench.Servers;

namespace Gateway.Bench.Reporting;

/// <summary>One measured quantity, per round for the gateway and the baseline; the medians and their ratio.</summary>
public sealed class Figure(string name, string unit, string format = "0.00")
{
    public string Name { get; } = name;

    public string Unit { get; } = unit;

    [JsonIgnore]
    public string Format { get; } = format;

    public List<double> Gateway { get; } = [];

    public List<double> Baseline { get; } = [];

    public double? GatewayMedian => Median(Gateway);

    public double? BaselineMedian => Median(Baseline);

    /// <summary>gateway / baseline, from the medians.</summary>
    public double? Ratio => GatewayMedian is { } g && BaselineMedian is { } b && b != 0 && !double.IsNaN(g) && !double.IsNaN(b) ? g / b : null;

    public void Add(Target target, double value) => (target == Target.Gateway ? Gateway : Baseline).Add(value);

    public static double? Median(List<double> values)
    {
        var valid = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (valid.Length == 0) return null;
        var middle = valid.Length / 2;
        return valid.Length % 2 == 1 ? valid[middle] : (valid[middle - 1] + valid[middle]) / 2;
    }

    public string Show(double? value) => value is { } v ? v.ToString(Format, CultureInfo.InvariantCulture) : "-";
}

/// <summary>A target from the issue, checked against this run.</summary>
public sealed record TargetCheck(string Target, bool Met, string Measured);

/// <summary>What one scenario measured: figures, errors, notes, the summary lines and the targets.</summary>
public sealed class ScenarioReport(string scenario, BenchOptions options)
{
    private readonly Dictionary<string, Figure> _figures = new(StringComparer.Ordinal);

    public string Scenario { get; } = scenario;

    public bool Quick { get; } = options.Quick;

    public int Rounds { get; } = options.Rounds;

    public double SecondsPerLoadRun { get; } = options.DurationSeconds;

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    public double ElapsedSeconds { get; set; }

    public MachineInfo Machine { get; } = MachineInfo.Current();

    public IEnumerable<Figure> Figures => _figures.Values;

    public ErrorCounts GatewayErrors { get; } = new();

    public ErrorCounts BaselineErrors { get; } = new();

    public List<string> Notes { get; } = [];

    public List<string> Summary { get; } = [];

    public List<TargetCheck> Targets { get; } = [];

    /// <summary>What the two columns hold: the gateway and the baseline, unless a scenario compares something else (durable: a store and memory).</summary>
    public string[] Columns { get; set; } = ["gateway", "baseline"];

    /// <summary>The named figure, created on first use (in table order).</summary>
    public Figure Figure(string name, string unit, string format = "0.00")
    {
        if (!_figures.TryGetValue(name, out var figure)) _figures[name] = figure = new Figure(name, unit, format);
        return figure;
    }

    public Figure? Find(string name) => _figures.GetValueOrDefault(name);

    public ErrorCounts Errors(Target target) => target == Servers.Target.Gateway ? GatewayErrors : BaselineErrors;

    public long TotalErrors => GatewayErrors.Total + BaselineErrors.Total;

    public void Target(string target, bool met, string measured) => Targets.Add(new TargetCheck(target, met, measured));

    public string Table()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"== {Scenario}{(Quick ? " (quick)" : "")}: {Rounds} round(s), {Columns[0]} and {Columns[1]} alternating; medians ==");
        var nameWidth = Math.Max(28, _figures.Values.Select(f => f.Name.Length + f.Unit.Length + 3).DefaultIfEmpty(0).Max());
        text.AppendLine(CultureInfo.InvariantCulture, $"{"figure".PadRight(nameWidth)} {Columns[0],12} {Columns[1],12} {"ratio",8}   rounds ({Columns[0]} | {Columns[1]})");
        foreach (var figure in _figures.Values)
        {
            var label = $"{figure.Name} ({figure.Unit})";
            var ratio = figure.Ratio is { } r ? r.ToString("0.00", CultureInfo.InvariantCulture) : "-";
            var rounds = $"{string.Join(" ", figure.Gateway.Select(v => figure.Show(v)))} | {string.Join(" ", figure.Baseline.Select(v => figure.Show(v)))}";
            text.AppendLine(CultureInfo.InvariantCulture, $"{label.PadRight(nameWidth)} {figure.Show(figure.GatewayMedian),12} {figure.Show(figure.BaselineMedian),12} {ratio,8}   {rounds}");
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"errors: gateway {GatewayErrors}; baseline {BaselineErrors}");
        foreach (var note in Notes) text.AppendLine(CultureInfo.InvariantCulture, $"note: {note}");
        foreach (var target in Targets)
            text.AppendLine(CultureInfo.InvariantCulture, $"target {(target.Met ? "met   " : "MISSED")}: {target.Target} (measured {target.Measured})");
        return text.ToString();
    }

    public string Write(string directory)
    {
        Directory.CreateDirectory(directory);
        var name = $"{StartedAt:yyyy-MM-dd}-{Scenario}{(Quick ? "-quick" : "")}.json";
        var path = Path.Combine(directory, name);
        var json = new
        {
            scenario = Scenario,
            quick = Quick,
            startedAt = StartedAt,
            elapsedSeconds = Math.Round(ElapsedSeconds, 1),
            rounds = Rounds,
            secondsPerLoadRun = SecondsPerLoadRun,
            machine = Machine,
            columns = Columns,
            summary = Summary,
            targets = Targets,
            figures = _figures.Values.Select(f => new
            {
                name = f.Name,
                unit = f.Unit,
                gateway = f.GatewayMedian,
                baseline = f.BaselineMedian,
                ratio = f.Ratio,
                gatewayRounds = f.Gateway,
                baselineRounds = f.Baseline,
            }),
            errors = new { gateway = GatewayErrors.ByKind, baseline = BaselineErrors.ByKind },
            notes = Notes,
        };
        File.WriteAllText(path, JsonSerializer.Serialize(json, JsonOptions) + Environment.NewLine);
        return path;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

/// <summary>The machine a run was made on.</summary>
public sealed record MachineInfo(string Cpu, int Cores, double MemoryGiB, string Kernel, string Runtime, string? Commit, double LoadAverage1m)
{
    public static MachineInfo Current()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
            : "?";
        var memory = File.Exists("/proc/meminfo")
            ? double.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024 / 1024
            : 0;
        var kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : Environment.OSVersion.ToString();
        var load = File.Exists("/proc/loadavg")
            ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture)
            : 0;
        return new MachineInfo(cpu, Environment.ProcessorCount, Math.Round(memory, 1), kernel,
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, GitCommit(), load);
    }

    private static string? GitCommit()
    {
        try
        {
            var info = new System.Diagnostics.ProcessStartInfo("git", "rev-parse --short HEAD")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = AppContext.BaseDirectory,
            };
            using var git = System.Diagnostics.Process.Start(info);
            if (git is null) return null;
            var output = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
