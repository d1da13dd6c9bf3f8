using Gateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// A gateway for one test class or collection of the conformance suite: the endpoint on, token auth,
/// agents <c>main</c> (default) and <c>beta</c> on the built-in agent, which echoes the input it got.
/// It also serves <see cref="ThrowingPath"/>, a route that throws, to show what an unhandled
/// exception looks like from outside.
/// </summary>
public class ConformanceGateway : IAsyncLifetime
{
    public const string ThrowingPath = "/v1/conformance/throws";
    public const string SecretInTheException = "connection string: Server=db;Password=hunter2";

    private GatewayServer? _server;

    protected virtual string Config => GatewayServer.DefaultConfig;

    /// <summary>Command-line settings, which stand in for environment variables.</summary>
    protected virtual string[] Args => [];

    public GatewayServer Server => _server ?? throw new InvalidOperationException("The gateway has not started.");

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(Config, MapThrowingRoute, Args);

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    public HttpClient Client(string? token = GatewayServer.Token) => Server.CreateClient(token);

    public static void MapThrowingRoute(WebApplication app) =>
        app.MapGet(ThrowingPath, IResult () => throw new InvalidOperationException(SecretInTheException));
}

/// <summary>The gateway shared by the conformance classes that neither count runs nor lock addresses.</summary>
[CollectionDefinition(Name)]
public sealed class SharedGatewayCollection : ICollectionFixture<ConformanceGateway>
{
    public const string Name = "Conformance: shared gateway";
}
