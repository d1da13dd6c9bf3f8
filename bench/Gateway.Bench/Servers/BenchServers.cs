using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using Gateway.Bench.Load;

namespace Gateway.Bench.Servers;

/// <summary>
/// The built-in agents the bench config defines. Each "twin" answers like its partner without the
/// delay (or with a short answer in the same pieces), so the harness can capture the bytes for the
/// baseline in a moment; a twin's id has the same length, so its bytes have the same length too.
/// </summary>
public static class BenchAgents
{
    /// <summary>Zero delay, 20 pieces: nonstream, stream and sessions.</summary>
    public const string Fast = "fast";

    /// <summary>One piece per second: hold.</summary>
    public const string Hold = "hold";

    /// <summary>The hold agent's twin without the delay.</summary>
    public const string HoldTwin = "holx";

    /// <summary>100 MB in 100,000 pieces of 1,000 characters, made as they are pulled: slow-reader.</summary>
    public const string Big = "big";

    /// <summary>The big agent's twin: the same 1,000-character pieces, ten of them.</summary>
    public const string BigTwin = "bix";

    public const int StreamPieces = 20;
    public const long BigReplyChars = 100_000_000;
    public const int BigPieces = 100_000;
}

/// <summary>
/// Where a gateway keeps sessions with memory (<c>gateway.sessions.persistence</c>); a bench config without
/// one (<see cref="BenchServers.StartGatewayAsync"/>'s <c>store: null</c>) runs on the gateway's default, SQLite
/// in the process's own state folder.
/// </summary>
public sealed record SessionStore(string Provider, string? ConnectionString = null)
{
    public static SessionStore Memory { get; } = new("memory");

    /// <summary>SQLite at its default place: <c>$OPENCLAW_STATE_DIR/gateway/sessions.db</c>, the process's own.</summary>
    public static SessionStore Sqlite { get; } = new("sqlite");

    public static SessionStore PostgreSql(string connectionString) => new("postgresql", connectionString);
}

/// <summary>
/// Starts the gateway and the baseline, and captures what the gateway answers. Every gateway gets a state
/// folder of its own (<c>OPENCLAW_STATE_DIR</c>, under the work directory, deleted when it stops): no run
/// writes into <c>~/.openclaw</c>, and no run sees another's sessions.
/// </summary>
public sealed class BenchServers(BenchOptions options, string workDirectory)
{
    public const string Token = "bench-token";

    public string WorkDirectory => workDirectory;

    private static readonly Assembly Self = typeof(BenchServers).Assembly;

    public static string DefaultGatewayDll => Metadata("GatewayApiDll");

    public static string DefaultResultsDirectory => Metadata("ResultsDirectory");

    private static string Metadata(string key) =>
        Self.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == key).Value!;

    /// <summary>The bench config: chat completions on, token auth, the bench agents, no caps that would queue the load.</summary>
    public static string GatewayConfig(int port, int holdPieces, double sessionIdleMinutes, SessionStore? store = null) => string.Create(CultureInfo.InvariantCulture, $$"""
        // Written by Gateway.Bench for one run.
        {
          gateway: {
            port: {{port}},
            bind: 'loopback',
            auth: { mode: 'token', token: '{{Token}}' },
            http: { endpoints: { chatCompletions: { enabled: true } } },{{Persistence(store)}}
          },
          session: { idleMinutes: {{sessionIdleMinutes}} },
          agents: {
            defaults: { timeoutSeconds: 3600, builtin: { pieceDelayMs: 0 } },
            list: [
              { id: '{{BenchAgents.Fast}}', default: true, builtin: { pieceDelayMs: 0, pieces: {{BenchAgents.StreamPieces}} } },
              { id: '{{BenchAgents.Hold}}', builtin: { pieceDelayMs: 1000, pieces: {{holdPieces}} } },
              { id: '{{BenchAgents.HoldTwin}}', builtin: { pieceDelayMs: 0, pieces: {{holdPieces}} } },
              { id: '{{BenchAgents.Big}}', builtin: { pieceDelayMs: 0, pieces: {{BenchAgents.BigPieces}}, replyChars: {{BenchAgents.BigReplyChars}} } },
              { id: '{{BenchAgents.BigTwin}}', builtin: { pieceDelayMs: 0, pieces: 10, replyChars: {{BenchAgents.BigReplyChars / BenchAgents.BigPieces * 10}} } },
            ],
          },
        }
        """);

    private static string Persistence(SessionStore? store) => store is null ? "" : $$"""

            sessions: { persistence: { provider: '{{store.Provider}}'{{(store.ConnectionString is { } connection ? $", connectionString: '{connection}'" : "")}} } },
        """;

    /// <summary>A gateway on its own port with its own state folder; <paramref name="store"/> null: the default store (SQLite there).</summary>
    public async Task<ServerProcess> StartGatewayAsync(int holdPieces, double sessionIdleMinutes, CancellationToken cancellation, SessionStore? store = null)
    {
        var port = ServerProcess.FreePort();
        var config = Path.Combine(workDirectory, $"gateway-{port}.json5");
        await File.WriteAllTextAsync(config, GatewayConfig(port, holdPieces, sessionIdleMinutes, store), cancellation);
        var dll = options.GatewayDll;
        if (!File.Exists(dll)) throw new FileNotFoundException($"gateway not built at {dll} (build src/Gateway.Api in Release, or pass --gateway)");
        var state = Directory.CreateDirectory(Path.Combine(workDirectory, $"state-{port}")).FullName;
        return await ServerProcess.StartAsync(Target.Gateway, dll, ["--config", config, "--port", port.ToString(CultureInfo.InvariantCulture)],
            new Dictionary<string, string> { [StateDirectoryVariable] = state }, port, cancellation, ownedDirectory: state);
    }

    /// <summary>The gateway's state folder (its default SQLite file is <c>gateway/sessions.db</c> in it).</summary>
    public const string StateDirectoryVariable = "OPENCLAW_STATE_DIR";

    public async Task<ServerProcess> StartBaselineAsync(BaselineResponse response, CancellationToken cancellation)
    {
        var port = ServerProcess.FreePort();
        var file = Path.Combine(workDirectory, $"baseline-{port}.json");
        response.Save(file);
        return await ServerProcess.StartAsync(Target.Baseline, Self.Location, ["baseline", "--port", port.ToString(CultureInfo.InvariantCulture), "--response", file],
            GatewayGcSettings(options.GatewayDll), port, cancellation);
    }

    /// <summary>
    /// The gateway's GC mode (server or workstation, concurrent or not) from its runtimeconfig, as
    /// environment variables for the baseline: both sides must collect garbage the same way, or the
    /// ratios measure the GC mode rather than the gateway.
    /// </summary>
    public static Dictionary<string, string> GatewayGcSettings(string gatewayDll)
    {
        var runtimeConfig = Path.ChangeExtension(gatewayDll, ".runtimeconfig.json");
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(runtimeConfig));
        var properties = document.RootElement.GetProperty("runtimeOptions").TryGetProperty("configProperties", out var found) ? found : default;
        string Flag(string name, bool runtimeDefault) =>
            (properties.ValueKind == System.Text.Json.JsonValueKind.Object && properties.TryGetProperty(name, out var value) ? value.GetBoolean() : runtimeDefault)
                ? "1" : "0";
        return new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = Flag("System.GC.Server", runtimeDefault: false),
            ["DOTNET_gcConcurrent"] = Flag("System.GC.Concurrent", runtimeDefault: true),
        };
    }

    /// <summary>
    /// Sends one request to the gateway and turns its answer into the baseline's: the same headers
    /// (less the per-response ones) and body, split into SSE events for a stream.
    /// </summary>
    public static async Task<BaselineResponse> CaptureAsync(IPEndPoint gateway, byte[] request, long contentEvents, int pieceDelayMs, CancellationToken cancellation)
    {
        using var connection = await HttpConnection.OpenAsync(gateway, cancellation);
        await connection.SendAsync(request, cancellation);
        var sink = new CapturingSink();
        var head = await connection.ReadResponseAsync(sink, cancellation, keepHead: true);
        if (head.Status != 200) throw new InvalidOperationException($"capture: the gateway answered {head.Status}: {Encoding.UTF8.GetString(sink.Body)}");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var sendContentLength = false;
        foreach (var line in head.RawHead!.Split("\r\n").Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) continue;
            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) sendContentLength = true;
            if (name.ToLowerInvariant() is "date" or "server" or "transfer-encoding" or "content-length" or "connection") continue;
            headers[name] = value;
        }
        var body = sink.Body;
        var sse = headers.TryGetValue("Content-Type", out var type) && type.StartsWith("text/event-stream", StringComparison.Ordinal);
        if (!sse) return new BaselineResponse(headers, false, [body], 0, 0, sendContentLength);
        var frames = SplitEvents(body);
        if (frames.Count < 3) throw new InvalidOperationException($"capture: a stream of {frames.Count} events");
        return new BaselineResponse(headers, true, [.. frames], contentEvents, pieceDelayMs, false);
    }

    private static List<byte[]> SplitEvents(byte[] body)
    {
        var frames = new List<byte[]>();
        var rest = body.AsSpan();
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf("\n\n"u8);
            var length = end < 0 ? rest.Length : end + 2;
            frames.Add(rest[..length].ToArray());
            rest = rest[length..];
        }
        return frames;
    }
}

/// <summary>Request bytes, prepared once: the client sends them as they are.</summary>
public static class BenchRequests
{
    public static byte[] Chat(IPEndPoint endpoint, string agent, bool stream, string? user = null, string message = "Say hello to the benchmark.")
    {
        var userField = user is null ? "" : $"\"user\":\"{user}\",";
        var body = $"{{\"model\":\"openclaw/{agent}\",{userField}\"stream\":{(stream ? "true" : "false")},\"messages\":[{{\"role\":\"user\",\"content\":\"{message}\"}}]}}";
        return Http(endpoint, body);
    }

    public static byte[] Http(IPEndPoint endpoint, string body)
    {
        var bodyBytes = Encoding.UTF8.GetBytes(body);
        var head = $"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{endpoint.Port}\r\nAuthorization: Bearer {BenchServers.Token}\r\n" +
            $"Content-Type: application/json\r\nContent-Length: {bodyBytes.Length}\r\n\r\n";
        return [.. Encoding.ASCII.GetBytes(head), .. bodyBytes];
    }
}
