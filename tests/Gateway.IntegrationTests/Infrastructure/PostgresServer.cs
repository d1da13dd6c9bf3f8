using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster that the tests start themselves: <c>initdb</c> into a temp folder, then
/// <c>pg_ctl start</c> on a free port at 127.0.0.1 (its Unix socket in the same folder), with one user who logs in
/// by password (scram-sha-256 for every TCP connection, so a wrong password is refused). As root (here and in CI)
/// the cluster belongs to the <c>postgres</c> OS user (initdb refuses root), through <c>runuser</c>.
/// PostgreSQL must be installed (initdb and pg_ctl on PATH or under /usr/lib/postgresql/&lt;version&gt;/bin): without
/// it the tests fail, saying so, rather than skip. Disposal stops the cluster and deletes its folder.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string User = "gateway";

    private const string OsUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    private readonly string _binDirectory;
    private readonly string _directory;
    private bool _disposed;

    private PostgresServer(string binDirectory, string directory, string password)
    {
        _binDirectory = binDirectory;
        _directory = directory;
        Password = password;
    }

    /// <summary>The user's password: random per cluster, so a test can check it never shows in a message.</summary>
    public string Password { get; }

    public int Port { get; private set; }

    public bool Running { get; private set; }

    private string DataDirectory => Path.Combine(_directory, "data");

    private string LogFile => Path.Combine(_directory, "postgres.log");

    /// <summary>A connection string for <paramref name="database"/> (any password: the cluster's by default).</summary>
    public string ConnectionString(string database, string? password = null, int? port = null) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port ?? Port,
            Database = database,
            Username = User,
            Password = password ?? Password,
        }.ConnectionString;

    /// <summary>Makes a fresh, empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null)
    {
        name ??= $"test_{Guid.NewGuid():N}";
        var admin = new NpgsqlConnectionStringBuilder(ConnectionString("postgres")) { Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>Initialises a cluster in a new temp folder and starts it on a free port.</summary>
    public static async Task<PostgresServer> StartNewAsync()
    {
        var bin = FindBinDirectory();
        var asRoot = IsRoot;
        if (asRoot && !OsUserExists(OsUser))
            throw new InvalidOperationException(
                $"PostgreSQL tests run as root, and initdb refuses root: they run it as the '{OsUser}' OS user, which does not exist here " +
                "(Debian's postgresql package creates it).");

        var directory = Directory.CreateTempSubdirectory("gateway-pg-").FullName;
        var server = new PostgresServer(bin, directory, $"pw-{Guid.NewGuid():N}");
        try
        {
            var passwordFile = Path.Combine(directory, "password");
            await File.WriteAllTextAsync(passwordFile, server.Password + "\n");
            if (asRoot) await RunAsync("chown", ["-R", $"{OsUser}:{OsUser}", directory]);
            await server.PgAsync("initdb", "-D", server.DataDirectory, "-U", User, $"--pwfile={passwordFile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C");
            File.Delete(passwordFile);
            // A test cluster: nothing it holds must survive a crash of the machine, so it skips the syncs.
            await File.AppendAllTextAsync(Path.Combine(server.DataDirectory, "postgresql.conf"), $"""

                listen_addresses = '127.0.0.1'
                unix_socket_directories = '{directory}'
                fsync = off
                synchronous_commit = off
                full_page_writes = off
                shared_buffers = 32MB
                max_connections = 200
                """);

            // A free port now may be taken by the time the server binds it: then try another.
            for (var attempt = 1; ; attempt++)
            {
                server.Port = FreePort();
                try
                {
                    await server.StartAsync();
                    break;
                }
                catch (InvalidOperationException) when (attempt < 3)
                {
                }
            }
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the (stopped) cluster again, on the same port; returns once it accepts connections.</summary>
    public async Task StartAsync()
    {
        await PgAsync("pg_ctl", "-D", DataDirectory, "-l", LogFile, "-w", "-t", "30", "-o", $"-c port={Port}", "start");
        Running = true;
    }

    /// <summary>Stops the cluster (fast: open connections are cut at once); returns once it is down.</summary>
    public async Task StopAsync()
    {
        await PgAsync("pg_ctl", "-D", DataDirectory, "-w", "-t", "30", "-m", "fast", "stop");
        Running = false;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (Directory.Exists(Path.Combine(DataDirectory, "global")) && File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
                await PgAsync("pg_ctl", "-D", DataDirectory, "-w", "-t", "30", "-m", "immediate", "stop");
        }
        finally
        {
            Running = false;
            try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Runs a PostgreSQL program, as the postgres OS user when the tests run as root.</summary>
    private Task PgAsync(string program, params string[] args)
    {
        var path = Path.Combine(_binDirectory, program);
        return IsRoot ? RunAsync("runuser", ["-u", OsUser, "--", path, .. args], _directory, LogFile) : RunAsync(path, args, _directory, LogFile);
    }

    private static async Task RunAsync(string fileName, string[] args, string? workingDirectory = null, string? logFile = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The postgres user may not be able to enter the test's folder.
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{fileName} {string.Join(' ', args)} did not finish within {CommandTimeout.TotalSeconds:N0} s:\n{output}");
        }
        if (process.ExitCode == 0) return;
        var log = logFile is not null && File.Exists(logFile) ? $"\n--- server log ---\n{Tail(File.ReadAllText(logFile), 4000)}" : "";
        throw new InvalidOperationException($"{fileName} {string.Join(' ', args)} failed with exit code {process.ExitCode}:\n{output}{log}");
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];

    /// <summary>The folder holding initdb and pg_ctl: PATH first, else the newest /usr/lib/postgresql/&lt;version&gt;/bin.</summary>
    private static string FindBinDirectory()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, "initdb"))
            .FirstOrDefault(File.Exists);
        if (onPath is not null)
        {
            // Debian links them from elsewhere; pg_ctl must be the one next to the real initdb (it finds postgres beside it).
            var real = new FileInfo(onPath).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? onPath;
            var folder = Path.GetDirectoryName(real)!;
            if (File.Exists(Path.Combine(folder, "pg_ctl"))) return folder;
        }
        const string debianRoot = "/usr/lib/postgresql";
        var installed = Directory.Exists(debianRoot)
            ? Directory.GetDirectories(debianRoot)
                .Select(folder => (Folder: Path.Combine(folder, "bin"), Version: int.TryParse(Path.GetFileName(folder).Split('.')[0], out var major) ? major : 0))
                .Where(candidate => File.Exists(Path.Combine(candidate.Folder, "initdb")) && File.Exists(Path.Combine(candidate.Folder, "pg_ctl")))
                .OrderByDescending(candidate => candidate.Version)
                .Select(candidate => candidate.Folder)
                .FirstOrDefault()
            : null;
        return installed ?? throw new InvalidOperationException(
            "PostgreSQL is not installed: the PostgreSQL session-store tests need initdb and pg_ctl, on PATH or under " +
            "/usr/lib/postgresql/<version>/bin. Install it (Debian/Ubuntu: apt-get install -y postgresql; .ci/run does this).");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsRoot => OperatingSystem.IsLinux() && geteuid() == 0;

    private static bool OsUserExists(string name)
    {
        var start = new ProcessStartInfo("id", ["-u", name]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    [DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}

/// <summary>One PostgreSQL cluster for the classes of <see cref="PostgresCollection"/> (each takes its own database).</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    public PostgresServer Server => _server ?? throw new InvalidOperationException("The PostgreSQL cluster has not started.");

    public async Task InitializeAsync() => _server = await PostgresServer.StartNewAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

/// <summary>
/// The classes that use the shared PostgreSQL cluster. xunit runs a collection's tests one at a time, so a test may
/// stop the cluster (to see the gateway live through an outage) as long as it starts it again before it ends.
/// </summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "PostgreSQL cluster";
}
