using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>
/// The real gateway as a child process (<c>dotnet Gateway.Api.dll --config &lt;file&gt;</c>, from this project's bin
/// folder, where the project reference puts it with its runtimeconfig and akka.hocon), on a free port at 127.0.0.1,
/// with <c>OPENCLAW_STATE_DIR</c> set to a folder the test owns. Unlike <see cref="GatewayServer"/> it can be killed
/// (SIGKILL: no shutdown hooks run), which is what a crash or an OOM kill looks like to the session store.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    public const string Token = GatewayServer.Token;

    private static readonly TimeSpan ReadyWithin = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _output;

    private GatewayProcess(Process process, StringBuilder output, Uri baseAddress)
    {
        _process = process;
        _output = output;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>The gateway's entry assembly, next to this test assembly.</summary>
    public static string GatewayDll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "Gateway.Api.dll");
            foreach (var needed in new[] { dll, Path.ChangeExtension(dll, ".runtimeconfig.json"), Path.Combine(AppContext.BaseDirectory, "akka.hocon") })
                if (!File.Exists(needed)) throw new InvalidOperationException($"{needed} is missing: build Gateway.sln first.");
            return dll;
        }
    }

    /// <summary>
    /// Starts the gateway with the config <paramref name="configFor"/> makes for its port, and returns once
    /// <c>GET /readyz</c> answers 200 (failing, with the process's output, if it exits or is not ready in time).
    /// </summary>
    public static async Task<GatewayProcess> StartAsync(Func<int, string> configFor, string stateDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = FreePort();
        var process = Launch(configFor(port), stateDirectory, environment, out var captured);
        var gateway = new GatewayProcess(process, captured.All, new Uri($"http://127.0.0.1:{port}"));
        try
        {
            await gateway.WaitUntilReadyAsync();
            return gateway;
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs the gateway on a config it should refuse, and returns its exit code and output once it has exited.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(
        string config, string stateDirectory, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? within = null)
    {
        var bound = within ?? TimeSpan.FromSeconds(30);
        using var process = Launch(config, stateDirectory, environment, out var captured);
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            // Returns once the process has exited and both streams are read to their end.
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the gateway did not exit within {bound.TotalSeconds:N0} s:\n{captured.All}");
        }
        lock (captured.Stdout) lock (captured.Stderr) return (process.ExitCode, captured.Stdout.ToString(), captured.Stderr.ToString());
    }

    /// <summary>What a launched process wrote: stdout and stderr apart, and both in the order they came.</summary>
    private sealed record Captured(StringBuilder Stdout, StringBuilder Stderr, StringBuilder All);

    private static Process Launch(string config, string stateDirectory, IReadOnlyDictionary<string, string>? environment, out Captured captured)
    {
        Directory.CreateDirectory(stateDirectory);
        var configPath = Path.Combine(stateDirectory, $"openclaw-{Guid.NewGuid():N}.json5");
        File.WriteAllText(configPath, config);
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = stateDirectory,
        };
        start.ArgumentList.Add(GatewayDll);
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(configPath);
        // The child sees only what the test gives it of the gateway's variables (a developer's OPENCLAW_* must not leak in).
        foreach (var name in start.Environment.Keys.Where(name => name.StartsWith("OPENCLAW_", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["OPENCLAW_STATE_DIR"] = stateDirectory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;

        var output = captured = new Captured(new StringBuilder(), new StringBuilder(), new StringBuilder());
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the gateway process");
        process.OutputDataReceived += (_, e) => Append(e.Data, output.Stdout, output.All);
        process.ErrorDataReceived += (_, e) => Append(e.Data, output.Stderr, output.All);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Append(string? line, StringBuilder stream, StringBuilder all)
    {
        if (line is null) return;
        lock (stream) stream.AppendLine(line);
        lock (all) all.AppendLine(line);
    }

    private async Task WaitUntilReadyAsync()
    {
        using var probe = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + ReadyWithin;
        while (true)
        {
            if (_process.HasExited)
                Assert.Fail($"the gateway process exited with code {_process.ExitCode} before it was ready:\n{Output}");
            try
            {
                using var response = await probe.GetAsync("/readyz");
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Listening, but not answering yet.
            }
            if (DateTime.UtcNow > deadline) Assert.Fail($"the gateway process was not ready within {ReadyWithin.TotalSeconds:N0} s:\n{Output}");
            await Task.Delay(50);
        }
    }

    public HttpClient CreateClient(string? token = Token)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Kills the process with SIGKILL (kill -9) and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        _process.Dispose();
    }

    /// <summary>The dotnet host running the tests (the SDK sets DOTNET_HOST_PATH for the processes it starts).</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        return "dotnet";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
