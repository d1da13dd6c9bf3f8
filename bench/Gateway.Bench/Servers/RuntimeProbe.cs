using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace Gateway.Bench.Servers;

/// <summary>
/// Looks inside a running .NET server over its diagnostics port (EventPipe, as dotnet-counters and
/// dotnet-gcdump do): induces a full GC before a memory reading, and reads the gateway's own
/// counters (the <c>Gateway</c> meter) and the runtime's GC heap size.
/// </summary>
public static class RuntimeProbe
{
    private const string RuntimeProvider = "Microsoft-Windows-DotNETRuntime";
    private const long GcKeyword = 0x1;
    private const long GcHeapCollectKeyword = 0x800000;
    private const string MetricsProvider = "System.Diagnostics.Metrics";
    private const long MetricsTimeSeriesKeyword = 0x2;

    /// <summary>A blocking full GC in the target (enabling GCHeapCollect induces one), then returns.</summary>
    public static async Task ForceGcAsync(int pid, CancellationToken cancellation)
    {
        var client = new DiagnosticsClient(pid);
        var provider = new EventPipeProvider(RuntimeProvider, EventLevel.Informational, GcKeyword | GcHeapCollectKeyword);
        using var session = await client.StartEventPipeSessionAsync([provider], requestRundown: false, circularBufferMB: 16, cancellation);
        using var source = new EventPipeEventSource(session.EventStream);
        var induced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // GCStart's reason 1 (Induced) or 7 (InducedNotForced); the GC ends with GCHeapStats.
        var sawInduced = false;
        source.Clr.GCStart += gc => sawInduced |= gc.Reason is Microsoft.Diagnostics.Tracing.Parsers.Clr.GCReason.Induced
            or Microsoft.Diagnostics.Tracing.Parsers.Clr.GCReason.InducedNotForced;
        source.Clr.GCHeapStats += _ =>
        {
            if (sawInduced) induced.TrySetResult();
        };
        var processing = Task.Run(source.Process, CancellationToken.None);
        try
        {
            await induced.Task.WaitAsync(TimeSpan.FromSeconds(15), cancellation);
        }
        finally
        {
            await session.StopAsync(CancellationToken.None);
            await processing;
        }
    }

    /// <summary>
    /// One reading of the given meters' instruments (observable counters give their total, gauges their
    /// value). Waits until every wanted instrument has reported once.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, double>> ReadMetricsAsync(int pid, string meters,
        IReadOnlyCollection<string> wanted, CancellationToken cancellation)
    {
        var client = new DiagnosticsClient(pid);
        var arguments = new Dictionary<string, string>
        {
            ["SessionId"] = Guid.NewGuid().ToString(),
            ["Metrics"] = meters,
            ["RefreshInterval"] = "0.25",
            ["MaxTimeSeries"] = "1000",
            ["MaxHistograms"] = "10",
        };
        var provider = new EventPipeProvider(MetricsProvider, EventLevel.Informational, MetricsTimeSeriesKeyword, arguments);
        using var session = await client.StartEventPipeSessionAsync([provider], requestRundown: false, circularBufferMB: 16, cancellation);
        using var source = new EventPipeEventSource(session.EventStream);
        // One value per instrument and tag set; an instrument's value is the sum over its tag sets. A
        // series seen a second time means one whole publication round has been read.
        var series = new Dictionary<(string Name, string Tags), double>();
        var complete = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Dynamic.All += e =>
        {
            if (e.ProviderName != MetricsProvider) return;
            var field = e.EventName switch
            {
                "GaugeValuePublished" => "lastValue",
                "CounterRateValuePublished" or "UpDownCounterRateValuePublished" => "value",
                _ => null,
            };
            if (field is null) return;
            if (e.PayloadByName("instrumentName") is not string name || !wanted.Contains(name)) return;
            if (e.PayloadByName(field) is not string text || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return;
            var key = (name, e.PayloadByName("tags") as string ?? "");
            lock (series)
            {
                if (series.ContainsKey(key) && series.Keys.Select(k => k.Name).Distinct().Count() == wanted.Count) complete.TrySetResult();
                else series[key] = value;
            }
        };
        var processing = Task.Run(source.Process, CancellationToken.None);
        try
        {
            await complete.Task.WaitAsync(TimeSpan.FromSeconds(15), cancellation);
        }
        finally
        {
            await session.StopAsync(CancellationToken.None);
            await processing;
        }
        lock (series) return series.GroupBy(pair => pair.Key.Name).ToDictionary(group => group.Key, group => group.Sum(pair => pair.Value));
    }
}
