using System.Globalization;
using System.Runtime.InteropServices;

namespace Gateway.Bench.Servers;

/// <summary>A process's resident memory and CPU time, read from <c>/proc/&lt;pid&gt;</c>.</summary>
public readonly record struct ProcSample(long RssBytes, double CpuSeconds, long Timestamp);

public static partial class ProcStats
{
    private const int ScClkTck = 2;
    private static readonly double TicksPerSecond = Math.Max(1, Sysconf(ScClkTck));

    public static ProcSample Read(int pid)
    {
        var timestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        return new ProcSample(ReadRss(pid), ReadCpuSeconds(pid), timestamp);
    }

    /// <summary><c>VmRSS</c> from <c>/proc/&lt;pid&gt;/status</c>.</summary>
    public static long ReadRss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"no VmRSS for process {pid}");
    }

    /// <summary>utime + stime from <c>/proc/&lt;pid&gt;/stat</c>, in seconds.</summary>
    public static double ReadCpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
        var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (utime + stime) / TicksPerSecond;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long Sysconf(int name);
}

/// <summary>The open-file limit (RLIMIT_NOFILE) of this process; children inherit it.</summary>
public static partial class OpenFileLimit
{
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    public static (ulong Soft, ulong Hard) Get()
    {
        GetRLimit(RlimitNofile, out var limit);
        return (limit.Current, limit.Max);
    }

    /// <summary>
    /// Raises the soft limit to at least <paramref name="wanted"/> (and the hard limit too when
    /// allowed, i.e. as root). Returns the soft limit in force afterwards.
    /// </summary>
    public static ulong EnsureAtLeast(ulong wanted)
    {
        GetRLimit(RlimitNofile, out var limit);
        if (limit.Current >= wanted) return limit.Current;
        var raised = new RLimit { Current = wanted, Max = Math.Max(limit.Max, wanted) };
        if (SetRLimit(RlimitNofile, ref raised) == 0) return wanted;
        // Not allowed to raise the hard limit: go as far as it lets us.
        raised = new RLimit { Current = limit.Max, Max = limit.Max };
        if (SetRLimit(RlimitNofile, ref raised) == 0) return limit.Max;
        return limit.Current;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit")]
    private static partial int SetRLimit(int resource, ref RLimit limit);
}
