using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Gateway.Bench.Servers;

/// <summary>Which server a figure belongs to.</summary>
public enum Target { Gateway, Baseline }

/// <summary>
/// A server under test, started as a child process (<c>dotnet some.dll args</c>) on a loopback port
/// and ready once <c>GET /readyz</c> answers 200. Its output is kept (the last lines) to explain a
/// failure; its memory and CPU are read from <c>/proc</c>.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly string? _ownedDirectory;

    private ServerProcess(Target target, Process process, int port, string? ownedDirectory)
    {
        Target = target;
        _process = process;
        _ownedDirectory = ownedDirectory;
        Port = port;
        Endpoint = new IPEndPoint(IPAddress.Loopback, port);
    }

    public Target Target { get; }

    public int Port { get; }

    public IPEndPoint Endpoint { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public ProcSample Sample() => ProcStats.Read(Pid);

    /// <param name="ownedDirectory">A folder that is the process's alone (its state), deleted once it has exited.</param>
    public static async Task<ServerProcess> StartAsync(Target target, string dll, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string> environment, int port, CancellationToken cancellation, string? ownedDirectory = null)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {dll}");
        var server = new ServerProcess(target, process, port, ownedDirectory);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitReadyAsync(TimeSpan.FromSeconds(60), cancellation);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>The last lines the process wrote, for error messages.</summary>
    public string OutputTail()
    {
        lock (_output) return string.Join(Environment.NewLine, _output);
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > 40) _output.Dequeue();
        }
    }

    private async Task WaitReadyAsync(TimeSpan limit, CancellationToken cancellation)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"{Target} exited with code {_process.ExitCode} before it was ready:{Environment.NewLine}{OutputTail()}");
            try
            {
                using var response = await client.GetAsync($"http://127.0.0.1:{Port}/readyz", cancellation);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellation.IsCancellationRequested)
            {
            }
            await Task.Delay(100, cancellation);
        }
        throw new TimeoutException($"{Target} not ready after {limit.TotalSeconds} s:{Environment.NewLine}{OutputTail()}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(wait.Token);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
        }
        _process.Dispose();
        if (_ownedDirectory is null) return;
        try
        {
            Directory.Delete(_ownedDirectory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A free loopback port (bound and released; good enough on a machine we own).</summary>
    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>The <c>dotnet</c> host that runs this process (so children use the same runtime).</summary>
    private static string DotnetHost()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath)) return hostPath;
        var runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
        var root = Path.GetFullPath(Path.Combine(runtimeDirectory, "..", "..", ".."));
        var candidate = Path.Combine(root, "dotnet");
        return File.Exists(candidate) ? candidate : "dotnet";
    }
}
