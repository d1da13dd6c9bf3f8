using Akka.Actor;
using Akka.Configuration;
using Gateway.Actors;
using Gateway.Actors.Sessions;
using Gateway.Api.Configuration;
using Gateway.Api.Hosting;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Actors;

/// <summary>
/// Durable sessions on a real SQLite file through the production journal (Akka.Persistence.Sql, configured as
/// the host configures it): a turn is in the journal when its client hears the end, a session recovers its
/// history after passivation, snapshots bound recovery and the journal, forgetting deletes, and stateless turns
/// never touch the journal.
/// </summary>
public sealed class DurableSessionSpec : SessionSpecBase, IDisposable
{
    private readonly string _directory;
    private readonly string _database;

    public DurableSessionSpec(ITestOutputHelper output) : this(output, Directory.CreateTempSubdirectory("gateway-durable-").FullName)
    {
    }

    private DurableSessionSpec(ITestOutputHelper output, string directory) : base(output, DurableConfig(directory))
    {
        _directory = directory;
        _database = DatabasePath(directory);
    }

    private static string DatabasePath(string directory) => Path.Combine(directory, "sessions.db");

    private static SessionStoreOptions Store(string directory) =>
        new(SessionStoreProvider.Sqlite, new SqliteConnectionStringBuilder { DataSource = DatabasePath(directory), Pooling = false }.ConnectionString,
            DatabasePath(directory), null);

    private static Config DurableConfig(string directory) =>
        SessionStoreSetup.Hocon(Store(directory))
            .WithFallback(ConfigurationFactory.ParseString(SessionJournalSerializer.Hocon))
            .WithFallback(PatientTestKit.Config);

    private SessionSettings Durable(int snapshotEvery = 50, TimeSpan? passivateAfter = null) => Settings(passivateAfter) with
    {
        Journal = GatewayActorsSetup.JournalFromHocon(Sys.Settings.Config, retention: null) with { SnapshotEvery = snapshotEvery },
    };

    [Fact]
    public async Task A_turn_is_in_the_journal_when_its_client_hears_the_answer()
    {
        var router = Router(BuiltIn, Durable());

        await AskForReplyAsync(router, Turn(AliceKey, "remember me"));

        Assert.Equal(1, Count("journal", AliceKey));
    }

    [Fact]
    public async Task A_passivated_session_recovers_its_history_from_the_journal()
    {
        var router = Router(BuiltIn, Durable(passivateAfter: TimeSpan.FromMilliseconds(50)));
        await AskForReplyAsync(router, Turn(AliceKey, "one"));
        await AskForReplyAsync(router, Turn(AliceKey, "two"));

        await AwaitAssertAsync(async () => Assert.Equal(0, (await SessionCountAsync(router)).Live));
        var third = await AskForReplyAsync(router, Turn(AliceKey, "three"));

        Assert.Contains("holds 2 earlier turn(s); the last one said: \"two\"", third);
    }

    [Fact]
    public async Task A_snapshot_after_N_turns_replaces_the_events_it_covers()
    {
        var router = Router(BuiltIn, Durable(snapshotEvery: 3, passivateAfter: TimeSpan.FromMilliseconds(50)));
        for (var i = 1; i <= 4; i++) await AskForReplyAsync(router, Turn(AliceKey, $"turn {i}"));

        // One snapshot (of turns 1-3), the last event it covers (kept so the session stays listed) and the one after it.
        await AwaitAssertAsync(() =>
        {
            Assert.Equal(1, Count("snapshot", AliceKey));
            Assert.Equal(2, Count("journal", AliceKey));
        });
        await AwaitAssertAsync(async () => Assert.Equal(0, (await SessionCountAsync(router)).Live));

        var fifth = await AskForReplyAsync(router, Turn(AliceKey, "turn 5"));
        Assert.Contains("holds 4 earlier turn(s); the last one said: \"turn 4\"", fifth);
    }

    [Fact]
    public async Task A_session_of_200_entries_recovers_from_one_snapshot()
    {
        // 100 turns: 200 entries, the whole of max-history-entries; a snapshot every 50 turns lands on the last one.
        var router = Router(BuiltIn, Durable(snapshotEvery: 50, passivateAfter: TimeSpan.FromMilliseconds(50)));
        for (var i = 1; i <= 100; i++) await AskForReplyAsync(router, Turn(AliceKey, $"turn {i}"));

        await AwaitAssertAsync(() =>
        {
            Assert.Equal(1, Count("snapshot", AliceKey));
            Assert.Equal(1, Count("journal", AliceKey));
        });
        await AwaitAssertAsync(async () => Assert.Equal(0, (await SessionCountAsync(router)).Live));

        var next = await AskForReplyAsync(router, Turn(AliceKey, "after recovery"));
        Assert.Contains("holds 100 earlier turn(s); the last one said: \"turn 100\"", next);
    }

    [Fact]
    public async Task Forgetting_a_session_deletes_its_history()
    {
        var router = Router(BuiltIn, Durable(passivateAfter: TimeSpan.FromMilliseconds(50)));
        await AskForReplyAsync(router, Turn(AliceKey, "secret"));
        await AskForReplyAsync(router, Turn(BobKey, "bob's"));
        var operatorProbe = CreateTestProbe();

        router.Tell(new ForgetSession(AliceKey), operatorProbe.Ref);

        Assert.True((await operatorProbe.ExpectMsgAsync<HistoryForgotten>()).Deleted);
        Assert.Equal(0, Count("journal", AliceKey));
        Assert.Equal(1, Count("journal", BobKey));
        await AwaitAssertAsync(async () => Assert.Equal(0, (await SessionCountAsync(router)).Live));
        Assert.Contains("This session holds no earlier turns.", await AskForReplyAsync(router, Turn(AliceKey, "anyone?")));
        Assert.Contains("holds 1 earlier turn(s)", await AskForReplyAsync(router, Turn(BobKey, "still there?")));
    }

    [Fact]
    public async Task Forgetting_a_session_that_is_not_alive_deletes_its_history_too()
    {
        var router = Router(BuiltIn, Durable(passivateAfter: TimeSpan.FromMilliseconds(50)));
        await AskForReplyAsync(router, Turn(AliceKey, "secret"));
        await AwaitAssertAsync(async () => Assert.Equal(0, (await SessionCountAsync(router)).Live));
        var operatorProbe = CreateTestProbe();

        router.Tell(new ForgetSession(AliceKey), operatorProbe.Ref);

        Assert.True((await operatorProbe.ExpectMsgAsync<HistoryForgotten>()).Deleted);
        Assert.Equal(0, Count("journal", AliceKey));
    }

    [Fact]
    public async Task Stateless_turns_never_touch_the_journal()
    {
        var router = Router(BuiltIn, Durable());

        for (var i = 0; i < 3; i++) await AskForReplyAsync(router, StatelessTurn($"stateless {i}"));
        // A turn with memory afterwards, so the journal's tables exist and the count below is a real zero.
        await AskForReplyAsync(router, Turn(AliceKey, "with memory"));

        Assert.Equal(1, CountAll("journal"));
    }

    private long Count(string table, string sessionKey) =>
        Scalar($"SELECT COUNT(*) FROM {table} WHERE persistence_id = $id" + (table == "journal" ? " AND deleted = 0" : ""),
            SessionJournalActor.PersistenceIdFor(sessionKey));

    private long CountAll(string table) => Scalar($"SELECT COUNT(*) FROM {table}" + (table == "journal" ? " WHERE deleted = 0" : ""), null);

    private long Scalar(string sql, string? id)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _database, Pooling = false }.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        if (id is not null) command.Parameters.AddWithValue("$id", id);
        return Convert.ToInt64(command.ExecuteScalar());
    }

    void IDisposable.Dispose()
    {
        Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file the journal still holds open goes with the temp folder's next clean-up.
        }
    }
}
