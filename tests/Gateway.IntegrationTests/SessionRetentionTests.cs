using Gateway.Actors.Sessions;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Gateway.IntegrationTests;

/// <summary><c>gateway.sessions.retentionDays</c>: a session idle for longer is deleted from the store, even if nobody opens it again.</summary>
public sealed class SessionRetentionTests
{
    // About 1.7 s: the sweep runs every half of it. Sessions passivate after 60 ms idle, so the sweep finds them asleep.
    private const string Config = """
        {
          gateway: {
            port: 0,
            auth: { mode: 'token', token: 'test-token' },
            http: { endpoints: { chatCompletions: { enabled: true } } },
            sessions: { retentionDays: 0.00002 },
          },
          session: { idleMinutes: 0.001 },
          agents: { list: [ { id: 'main', default: true } ] },
        }
        """;

    [Fact]
    public async Task An_expired_session_is_deleted_without_being_opened_again()
    {
        await using var server = await GatewayServer.StartAsync(Config);
        using var client = server.CreateClient();
        var user = $"ada-{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("first", user: user));
        // Still well within its retention: the next turn sees the first.
        Assert.Contains(ChatApi.OneEarlierTurn("first"), await ChatApi.CompleteAsync(client, ChatApi.Body("second", user: user)));
        Assert.True(RowsOf(server, user) > 0);

        await Eventually.TrueAsync(() => RowsOf(server, user) == 0, TimeSpan.FromSeconds(30),
            "the expired session's rows were never deleted");

        Assert.Contains(ChatApi.NoEarlierTurns, await ChatApi.CompleteAsync(client, ChatApi.Body("anyone?", user: user)));
    }

    private static long RowsOf(GatewayServer server, string user)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = server.SessionDatabase, Pooling = false }.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = $id AND deleted = 0";
        command.Parameters.AddWithValue("$id", SessionJournalActor.PersistenceIdFor($"agent:main:openai-user:{user}"));
        return Convert.ToInt64(command.ExecuteScalar());
    }
}
