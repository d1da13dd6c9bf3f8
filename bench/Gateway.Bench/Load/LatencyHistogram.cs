using System.Diagnostics;
using HdrHistogram;

namespace Gateway.Bench.Load;

/// <summary>
/// An HDR histogram of latencies in nanoseconds (100 ns to 10 minutes, 3 significant digits). Not
/// thread-safe: each load worker records into its own and they are merged at the end.
/// </summary>
public sealed class LatencyHistogram
{
    private const long Lowest = 100;
    private const long Highest = 600L * 1_000_000_000;
    private readonly LongHistogram _histogram = new(Lowest, Highest, 3);

    public long Count => _histogram.TotalCount;

    public void RecordTicks(long stopwatchTicks)
    {
        var ns = (long)(stopwatchTicks * (1e9 / Stopwatch.Frequency));
        _histogram.RecordValue(Math.Clamp(ns, Lowest, Highest));
    }

    public void Add(LatencyHistogram other) => _histogram.Add(other._histogram);

    public double PercentileMs(double percentile) => Count == 0 ? double.NaN : _histogram.GetValueAtPercentile(percentile) / 1e6;

    public double MeanMs => Count == 0 ? double.NaN : _histogram.GetMean() / 1e6;

    public double MaxMs => Count == 0 ? double.NaN : _histogram.GetMaxValue() / 1e6;

    public LatencySummary Summary() =>
        new(Count, PercentileMs(50), PercentileMs(90), PercentileMs(99), PercentileMs(99.9), MaxMs, MeanMs);
}

/// <summary>Latency percentiles in milliseconds.</summary>
public sealed record LatencySummary(long Count, double P50, double P90, double P99, double P999, double Max, double Mean);
