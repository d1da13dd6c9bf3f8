using System.Diagnostics;
using System.Net;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;
using static Gateway.IntegrationTests.SessionStoreTestSupport;

namespace Gateway.IntegrationTests;

/// <summary>
/// Durable sessions on PostgreSQL (a throwaway cluster the tests start, one database per test): kept across a
/// kill -9, a start refused when the server cannot be used (without showing the password), and an outage mid-run
/// that fails only the turns that need the store, for a bounded time, after which the sessions go on.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresSessionStoreTests(PostgresFixture fixture, ITestOutputHelper output) : IDisposable
{
    private readonly string _stateDirectory = Directory.CreateTempSubdirectory("gateway-pg-state-").FullName;

    private PostgresServer Postgres => fixture.Server;

    [Fact]
    public async Task Turns_recorded_before_a_kill_9_are_there_after_the_restart()
    {
        var connectionString = await Postgres.CreateDatabaseAsync();
        // The connection string comes from an environment variable, as an operator would keep its password out of the file.
        var environment = new Dictionary<string, string> { ["GATEWAY_TEST_PG"] = connectionString };
        string Config(int port) => DurableSessionTests.Config(port, Sessions("postgresql", "${GATEWAY_TEST_PG}"));

        await using (var first = await GatewayProcess.StartAsync(Config, _stateDirectory, environment))
        {
            using var client = first.CreateClient();
            Assert.Equal(ChatApi.FreshReply("one"), await ChatApi.CompleteAsync(client, ChatApi.Body("one", user: "ada")));
            Assert.Equal(DurableSessionTests.Reply("two", 1, "one"), await ChatApi.CompleteAsync(client, ChatApi.Body("two", user: "ada")));

            await first.KillAsync();
        }
        // The sessions are in the database, not in a SQLite file under the state folder.
        Assert.False(File.Exists(Path.Combine(_stateDirectory, "gateway", "sessions.db")), "a PostgreSQL gateway made a sessions.db");

        await using var second = await GatewayProcess.StartAsync(Config, _stateDirectory, environment);
        using var again = second.CreateClient();

        Assert.Equal(DurableSessionTests.Reply("three", 2, "two"), await ChatApi.CompleteAsync(again, ChatApi.Body("three", user: "ada")));
    }

    [Fact]
    public async Task A_wrong_password_refuses_the_start_naming_the_key_without_the_password()
    {
        var database = await Postgres.CreateDatabaseAsync();
        var wrongPassword = $"wrong-{Guid.NewGuid():N}";
        var connectionString = database.Replace(Postgres.Password, wrongPassword, StringComparison.Ordinal);
        Assert.Contains(wrongPassword, connectionString);

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(InProcessConfig(Sessions("postgresql", connectionString))));

        output.WriteLine(refused.Message);
        Assert.Contains(ConnectionStringKey, refused.Message);
        Assert.Contains("password authentication failed", refused.Message);
        Assert.DoesNotContain(wrongPassword, refused.Message);
        Assert.DoesNotContain(Postgres.Password, refused.Message);
    }

    [Fact]
    public async Task A_wrong_password_stops_the_process_with_exit_code_2_and_never_prints_the_password()
    {
        var database = await Postgres.CreateDatabaseAsync();
        var wrongPassword = $"wrong-{Guid.NewGuid():N}";
        var environment = new Dictionary<string, string> { ["GATEWAY_TEST_PG"] = database.Replace(Postgres.Password, wrongPassword, StringComparison.Ordinal) };

        var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(
            DurableSessionTests.Config(FreePort(), Sessions("postgresql", "${GATEWAY_TEST_PG}")), _stateDirectory, environment);

        output.WriteLine(stderr);
        Assert.Equal(2, exitCode);
        Assert.Contains(RefusedHeader, stderr);
        Assert.Contains(ConnectionStringKey, stderr);
        Assert.DoesNotContain(wrongPassword, stdout + stderr);
    }

    [Fact]
    public async Task A_server_that_does_not_answer_refuses_the_start_naming_the_key()
    {
        // Nothing listens on this port: the connection is refused.
        var password = $"secret-{Guid.NewGuid():N}";
        var connectionString = Postgres.ConnectionString("sessions", password, port: FreePort());
        var started = Stopwatch.StartNew();

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(InProcessConfig(Sessions("postgresql", connectionString))));

        output.WriteLine($"{started.ElapsedMilliseconds} ms: {refused.Message}");
        Assert.Contains(ConnectionStringKey, refused.Message);
        Assert.DoesNotContain(password, refused.Message);
    }

    [Fact]
    public async Task A_server_stopped_mid_run_fails_turns_with_memory_503_and_the_sessions_go_on_once_it_is_back()
    {
        var connectionString = await Postgres.CreateDatabaseAsync();
        await using var server = await GatewayServer.StartAsync(InProcessConfig(Sessions("postgresql", "${GATEWAY_TEST_PG}")), $"--GATEWAY_TEST_PG={connectionString}");
        using var client = server.CreateClient();
        var plain = $"outage-plain-{Guid.NewGuid():N}";
        var streamed = $"outage-streamed-{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("plain 1", user: plain));
        await ChatApi.CompleteAsync(client, ChatApi.Body("plain 2", user: plain));
        await ChatApi.CompleteAsync(client, ChatApi.Body("streamed 1", user: streamed));

        await Postgres.StopAsync();
        try
        {
            // A turn of a session whose journal is open: it runs, and fails when its turn cannot be written.
            var clock = Stopwatch.StartNew();
            var (status, body) = await Eventually.WithinAsync(SendAsync(client, ChatApi.Body("plain 3", user: plain)), TimeSpan.FromSeconds(20), "a turn with memory while the store is down");
            output.WriteLine($"JSON turn failed after {clock.ElapsedMilliseconds} ms: {body.RootElement}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            AssertStoreUnavailable(body.RootElement);

            // A streamed one: its answer streams, then the error event and [DONE] come instead of the finish chunk.
            clock.Restart();
            using (var response = await SendStreamAsync(client, "streamed 2", streamed))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var content = await Eventually.WithinAsync(AssertStreamEndsWithStoreErrorAsync(response), TimeSpan.FromSeconds(20), "a streamed turn with memory while the store is down");
                output.WriteLine($"streamed turn failed after {clock.ElapsedMilliseconds} ms, having streamed: {content}");
                Assert.Equal(DurableSessionTests.Reply("streamed 2", 1, "streamed 1"), content);
            }

            // The next turn of the first session needs its journal opened again (a recovery), which fails too.
            clock.Restart();
            (status, body) = await Eventually.WithinAsync(SendAsync(client, ChatApi.Body("plain 4", user: plain)), TimeSpan.FromSeconds(20), "a second turn with memory while the store is down");
            output.WriteLine($"second JSON turn failed after {clock.ElapsedMilliseconds} ms");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            AssertStoreUnavailable(body.RootElement);

            // A stateless turn does not need the store.
            Assert.Equal(ChatApi.FreshReply("no memory"), await ChatApi.CompleteAsync(client, ChatApi.Body("no memory")));
        }
        finally
        {
            if (!Postgres.Running) await Postgres.StartAsync();
        }

        // The store is back: each session holds the turns recorded before the outage, and none of the failed ones.
        Assert.Equal(DurableSessionTests.Reply("plain 5", 2, "plain 2"), await ChatApi.CompleteAsync(client, ChatApi.Body("plain 5", user: plain)));
        Assert.Equal(DurableSessionTests.Reply("streamed 3", 1, "streamed 1"), await ChatApi.CompleteAsync(client, ChatApi.Body("streamed 3", user: streamed)));
        // And they record again.
        Assert.Equal(DurableSessionTests.Reply("plain 6", 3, "plain 5"), await ChatApi.CompleteAsync(client, ChatApi.Body("plain 6", user: plain)));
    }

    private static Task<HttpResponseMessage> SendStreamAsync(HttpClient client, string message, string user) =>
        StartStreamAsync(client, ChatApi.Body(message, user: user));

    public void Dispose()
    {
        try { Directory.Delete(_stateDirectory, recursive: true); } catch (IOException) { }
    }
}
