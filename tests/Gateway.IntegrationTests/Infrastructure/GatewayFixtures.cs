namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>
/// One gateway per test class (or collection) for tests that do not interfere: each uses its own
/// <c>user</c> or session key, and none counts runs.
/// </summary>
public class GatewayFixture : IAsyncLifetime
{
    private GatewayServer? _server;

    protected virtual string Config => GatewayServer.DefaultConfig;

    public GatewayServer Server => _server ?? throw new InvalidOperationException("The gateway has not started.");

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(Config);

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

/// <summary>The default gateway, shared by the classes of <see cref="DefaultGatewayCollection"/>.</summary>
public sealed class DefaultGatewayFixture : GatewayFixture;

[CollectionDefinition(Name)]
public sealed class DefaultGatewayCollection : ICollectionFixture<DefaultGatewayFixture>
{
    public const string Name = "Default gateway";
}

/// <summary>
/// A gateway whose built-in agents answer slowly. <c>main</c> (the default) makes 10 pieces 200 ms
/// apart (about 2 s a reply); <c>slow</c> makes 50 (about 10 s), long enough that only a
/// cancellation can end it within the 2 s the disconnect tests allow; <c>silent</c> says nothing for
/// 30 s after its role chunk (a model that thinks long before its first token).
/// </summary>
public sealed class SlowGatewayFixture : GatewayFixture
{
    public const string SlowAgent = "slow";

    public const string SilentAgent = "silent";

    /// <summary>An agent that could answer 100 MB (in 1 KB pieces) as fast as it is read.</summary>
    public const string FloodAgent = "flood";

    public const long FloodChars = 100_000_000;

    public static readonly TimeSpan PieceDelay = TimeSpan.FromMilliseconds(200);

    protected override string Config => """
        {
          gateway: {
            port: 0,
            auth: { mode: 'token', token: 'test-token' },
            http: { endpoints: { chatCompletions: { enabled: true } } },
          },
          agents: {
            defaults: { builtin: { pieceDelayMs: 200, pieces: 10 } },
            list: [
              { id: 'main', default: true },
              { id: 'slow', builtin: { pieceDelayMs: 200, pieces: 50 } },
              { id: 'silent', builtin: { pieceDelayMs: 30000, pieces: 2 } },
              { id: 'flood', builtin: { pieceDelayMs: 0, replyChars: 100000000, pieces: 100000 } },
            ],
          },
        }
        """;
}
