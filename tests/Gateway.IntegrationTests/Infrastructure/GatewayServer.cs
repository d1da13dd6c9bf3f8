using System.Net.Http.Headers;
using Akka.Actor;
using Gateway.Actors;
using Gateway.Api.Configuration;
using Gateway.Api.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>
/// The real gateway on a real Kestrel at 127.0.0.1 on a free port, started from a JSON5 config file
/// written to a temp folder. Extra command-line style settings (<c>--OPENCLAW_GATEWAY_TOKEN=x</c>)
/// stand in for environment variables, so tests never touch the process environment.
/// </summary>
public sealed class GatewayServer : IAsyncDisposable
{
    public const string Token = "test-token";

    /// <summary>Chat completions on, token auth, agents main (default) and beta on the built-in agent.</summary>
    public const string DefaultConfig = """
        {
          gateway: {
            port: 0,
            auth: { mode: 'token', token: 'test-token' },
            http: { endpoints: { chatCompletions: { enabled: true } } },
          },
          agents: { list: [ { id: 'main', default: true }, { id: 'beta' } ] },
        }
        """;

    private readonly string _directory;

    private GatewayServer(WebApplication app, string directory, Uri baseAddress)
    {
        App = app;
        _directory = directory;
        BaseAddress = baseAddress;
    }

    public WebApplication App { get; }

    public Uri BaseAddress { get; }

    /// <summary>The server's own folder: its config, and its state (the default SQLite session store, <see cref="SessionDatabase"/>).</summary>
    public string Folder => _directory;

    /// <summary>The default session store's file.</summary>
    public string SessionDatabase => Path.Combine(_directory, "gateway", "sessions.db");

    public GatewayMetrics Metrics => App.Services.GetRequiredService<GatewayMetrics>();

    public ActorSystem ActorSystem => App.Services.GetRequiredService<ActorSystem>();

    public static Task<GatewayServer> StartAsync(string config = DefaultConfig, params string[] extraArgs) =>
        StartAsync(config, configure: null, extraArgs);

    /// <param name="configure">Runs on the built app before it starts (to map a test-only route, say).</param>
    public static async Task<GatewayServer> StartAsync(string config, Action<WebApplication>? configure, params string[] extraArgs)
    {
        var directory = Directory.CreateTempSubdirectory("gateway-test-").FullName;
        var configPath = Path.Combine(directory, "openclaw.json");
        await File.WriteAllTextAsync(configPath, config);
        // Sessions are kept under the test's own folder (the default store is SQLite under the state folder).
        var app = GatewayHost.Build(["--config", configPath, "--Logging:LogLevel:Default=Warning",
            $"--{SessionStoreOptions.StateDirectoryVariable}={directory}", .. extraArgs]);
        configure?.Invoke(app);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new GatewayServer(app, directory, new Uri(address));
    }

    /// <summary>A raw client; with <paramref name="token"/> it sends <c>Authorization: Bearer</c>.</summary>
    public HttpClient CreateClient(string? token = Token)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
