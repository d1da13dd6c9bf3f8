using System.Diagnostics;
using System.Globalization;
using Gateway.Bench;
using Gateway.Bench.Reporting;
using Gateway.Bench.Scenarios;
using Gateway.Bench.Servers;

// The baseline server is a second mode of this executable, started by the harness as a child process.
if (args is ["baseline", ..])
{
    var port = int.Parse(Argument(args, "--port"), CultureInfo.InvariantCulture);
    return await BaselineServer.RunAsync(port, Argument(args, "--response"));
}

// A bare load run against a server already up (for profiling): load PORT [--stream] [--concurrency N] [--seconds S] [--agent ID].
if (args is ["load", var portText, ..])
{
    var endpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, int.Parse(portText, CultureInfo.InvariantCulture));
    var streaming = args.Contains("--stream");
    var concurrency = args.Contains("--concurrency") ? int.Parse(Argument(args, "--concurrency"), CultureInfo.InvariantCulture) : 16;
    var seconds = args.Contains("--seconds") ? double.Parse(Argument(args, "--seconds"), CultureInfo.InvariantCulture) : 10;
    var agent = args.Contains("--agent") ? Argument(args, "--agent") : BenchAgents.Fast;
    var request = BenchRequests.Chat(endpoint, agent, streaming);
    var result = await Gateway.Bench.Load.ClosedLoop.RunAsync(new Gateway.Bench.Load.LoadPlan(endpoint, _ => request, streaming, concurrency,
        TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(seconds)), CancellationToken.None);
    var latency = result.Latency.Summary();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{result.RequestsPerSecond:0} req/s, p50 {latency.P50:0.00} ms, p99 {latency.P99:0.00} ms, first event p99 {result.FirstEvent.PercentileMs(99):0.00} ms, errors: {result.Errors}"));
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    await Console.Error.WriteLineAsync(ex.Message);
    await Console.Error.WriteLineAsync(BenchOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

var workDirectory = Directory.CreateTempSubdirectory("gateway-bench-").FullName;
var context = new BenchContext(options, new BenchServers(options, workDirectory));
var names = options.Scenario == "all" ? BenchOptions.Scenarios : [options.Scenario];
var summary = new List<string>();
var failed = false;
context.Log($"gateway: {options.GatewayDll}; {Environment.ProcessorCount} cores; scenarios: {string.Join(", ", names)}{(options.Quick ? " (quick)" : "")}");
foreach (var name in names)
{
    var report = new ScenarioReport(name, options);
    var clock = Stopwatch.StartNew();
    try
    {
        await Scenario.Create(name).RunAsync(context, report, stop.Token);
    }
    catch (Exception ex) when (!stop.IsCancellationRequested)
    {
        failed = true;
        await Console.Error.WriteLineAsync($"{name}: failed: {ex}");
        summary.Add($"{name}: failed: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
        continue;
    }
    report.ElapsedSeconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine();
    Console.Write(report.Table());
    foreach (var line in report.Summary) Console.WriteLine(line);
    summary.AddRange(report.Summary);
    if (report.TotalErrors > 0)
    {
        failed |= !options.AllowErrors;
        summary.Add($"{name}: errors: gateway {report.GatewayErrors}; baseline {report.BaselineErrors}");
    }
    if (options.WriteResults) context.Log($"{name}: results in {report.Write(options.ResultsDirectory)}");
    context.Log($"{name}: done in {clock.Elapsed.TotalSeconds:0} s");
}
try
{
    Directory.Delete(workDirectory, recursive: true);
}
catch (IOException)
{
}

if (names.Length > 1)
{
    Console.WriteLine();
    Console.WriteLine("== summary ==");
    foreach (var line in summary) Console.WriteLine(line);
}
return stop.IsCancellationRequested ? 130 : failed ? 1 : 0;

static string Argument(string[] args, string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : throw new ArgumentException($"{name} is required");
}
