using System.Diagnostics;
using System.Net;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;
using static Gateway.IntegrationTests.SessionStoreTestSupport;

namespace Gateway.IntegrationTests;

/// <summary>
/// The SQLite session store when it cannot be used: a start is refused (naming the key) for a file that cannot be
/// made or is locked by another process, and a lock taken mid-run fails only the turns that must be written, after
/// which the session goes on.
/// </summary>
public sealed class SqliteSessionStoreFailureTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gateway-sqlite-").FullName;

    [Fact]
    public async Task A_path_whose_folder_cannot_be_made_refuses_the_start_naming_the_key()
    {
        var blocker = Path.Combine(_directory, "not-a-folder");
        await File.WriteAllTextAsync(blocker, "a regular file");
        var path = Path.Combine(blocker, "sessions", "sessions.db");

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(InProcessConfig(Sessions("sqlite", path))));

        output.WriteLine(refused.Message);
        Assert.Contains(ConnectionStringKey, refused.Message);
        Assert.Contains(path, refused.Message);
    }

    [Fact]
    public async Task A_file_locked_by_another_connection_refuses_the_start_naming_the_key()
    {
        var path = Path.Combine(_directory, "locked.db");
        await using var locker = await LockAsync(path);
        var started = Stopwatch.StartNew();

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(InProcessConfig(Sessions("sqlite", $"Data Source={path}"))));

        output.WriteLine($"{started.ElapsedMilliseconds} ms: {refused.Message}");
        Assert.Contains(ConnectionStringKey, refused.Message);
        Assert.Contains("locked", refused.Message);
    }

    [Fact]
    public async Task A_refused_start_as_a_process_exits_with_code_2_and_says_why_on_stderr()
    {
        var blocker = Path.Combine(_directory, "not-a-folder");
        await File.WriteAllTextAsync(blocker, "a regular file");
        var path = Path.Combine(blocker, "sessions.db");

        var (exitCode, _, stderr) = await GatewayProcess.RunToExitAsync(
            DurableSessionTests.Config(FreePort(), Sessions("sqlite", path)), Path.Combine(_directory, "state"));

        output.WriteLine(stderr);
        Assert.Equal(2, exitCode);
        Assert.Contains(RefusedHeader, stderr);
        Assert.Contains($"{ConnectionStringKey}: cannot open the SQLite session database {path}", stderr);
    }

    [Fact]
    public async Task A_lock_taken_mid_run_fails_the_turn_with_memory_503_and_the_session_goes_on_once_it_is_released()
    {
        var path = Path.Combine(_directory, "sessions.db");
        await using var server = await GatewayServer.StartAsync(InProcessConfig(Sessions("sqlite", path)));
        using var client = server.CreateClient();
        var user = $"locked-{Guid.NewGuid():N}";
        await ChatApi.CompleteAsync(client, ChatApi.Body("before the lock", user: user));

        TimeSpan failedAfter;
        await using (await LockAsync(path))
        {
            var clock = Stopwatch.StartNew();
            var (status, body) = await Eventually.WithinAsync(SendAsync(client, ChatApi.Body("while locked", user: user)), TimeSpan.FromSeconds(40), "a turn with memory while the file is locked");
            failedAfter = clock.Elapsed;
            output.WriteLine($"the turn failed after {failedAfter.TotalMilliseconds:N0} ms: {body.RootElement}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            AssertStoreUnavailable(body.RootElement);

            // A stateless turn does not need the store.
            Assert.Equal(ChatApi.FreshReply("no memory"), await ChatApi.CompleteAsync(client, ChatApi.Body("no memory")));
        }

        // Released: the session holds the turn from before the lock, not the one that failed.
        var after = await ChatApi.CompleteAsync(client, ChatApi.Body("after the lock", user: user));
        Assert.Equal($"Built-in agent 'main' received: \"after the lock\". {ChatApi.OneEarlierTurn("before the lock")}", after);
        Assert.True(failedAfter < TimeSpan.FromSeconds(15), $"the turn took {failedAfter.TotalSeconds:N1} s to fail on a locked store");
    }

    /// <summary>Another connection that holds an exclusive transaction on the file until it is disposed.</summary>
    private static async Task<SqliteConnection> LockAsync(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "BEGIN EXCLUSIVE;";
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
