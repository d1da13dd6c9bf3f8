using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Gateway.Bench.Servers;

/// <summary>
/// A throwaway PostgreSQL cluster for one bench run: <c>initdb</c> into a temp folder (trust auth, the
/// server's defaults otherwise: fsync and synchronous commit on), started on a free 127.0.0.1 port,
/// stopped and deleted at the end. initdb refuses to run as root, so as root it runs (with pg_ctl) as
/// the <c>postgres</c> OS user, which then owns the folder.
/// </summary>
public sealed partial class PostgresCluster : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _folder;
    private readonly bool _asPostgres;

    private PostgresCluster(string bin, string folder, bool asPostgres, int port)
    {
        _bin = bin;
        _folder = folder;
        _asPostgres = asPostgres;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => string.Create(CultureInfo.InvariantCulture, $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres");

    /// <summary>The folder with initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin; null when not installed.</summary>
    public static string? FindBin()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(folder => File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl")));
        if (onPath is not null) return onPath;
        if (!Directory.Exists("/usr/lib/postgresql")) return null;
        return Directory.GetDirectories("/usr/lib/postgresql")
            .Select(version => Path.Combine(version, "bin"))
            .Where(bin => File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "pg_ctl")))
            .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), out var major) ? major : 0)
            .FirstOrDefault();
    }

    /// <summary>A running cluster, or null when PostgreSQL is not installed.</summary>
    public static async Task<PostgresCluster?> StartAsync(CancellationToken cancellation)
    {
        if (FindBin() is not { } bin) return null;
        // Its own temp folder (not under the bench's work directory, which only root may enter).
        var folder = Directory.CreateTempSubdirectory("gateway-bench-pg-").FullName;
        var asPostgres = geteuid() == 0;
        var cluster = new PostgresCluster(bin, folder, asPostgres, ServerProcess.FreePort());
        try
        {
            if (asPostgres) await RunAsync("chown", ["postgres:", folder], cancellation);
            var data = Path.Combine(folder, "data");
            await cluster.ToolAsync("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], cancellation);
            await cluster.ToolAsync("pg_ctl", ["-D", data, "-l", Path.Combine(folder, "server.log"), "-w", "-t", "60",
                "-o", $"-p {cluster.Port} -k {folder} -c listen_addresses=127.0.0.1", "start"], cancellation);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        var data = Path.Combine(_folder, "data");
        if (File.Exists(Path.Combine(data, "postmaster.pid")))
        {
            try
            {
                await ToolAsync("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"], CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
            }
        }
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private Task ToolAsync(string tool, IEnumerable<string> args, CancellationToken cancellation) => _asPostgres
        ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(_bin, tool), .. args], cancellation)
        : RunAsync(Path.Combine(_bin, tool), args, cancellation);

    private static async Task RunAsync(string file, IEnumerable<string> args, CancellationToken cancellation)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync(cancellation);
        var errors = process.StandardError.ReadToEndAsync(cancellation);
        await process.WaitForExitAsync(cancellation);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{string.Join(' ', info.ArgumentList.Prepend(file))} exited with {process.ExitCode}: {await errors}{await output}");
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
