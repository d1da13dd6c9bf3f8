using Gateway.Api.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;

namespace Gateway.UnitTests.Configuration;

/// <summary><c>gateway.sessions.persistence</c> and <c>retentionDays</c> as the gateway reads them, and the samples that show them.</summary>
public sealed class SessionStoreOptionsTests
{
    private static (GatewayOptions Options, IConfiguration Root) Read(string json5, params (string Key, string Value)[] environment)
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("gateway-config-").FullName, "openclaw.json5");
        File.WriteAllText(file, json5);
        return ReadFile(file, environment);
    }

    private static (GatewayOptions Options, IConfiguration Root) ReadFile(string file, params (string Key, string Value)[] environment)
    {
        var root = new ConfigurationBuilder()
            .AddInMemoryCollection(OpenClawConfigFile.Load(file))
            .AddInMemoryCollection(environment.Select(pair => new KeyValuePair<string, string?>(pair.Key, pair.Value)))
            .Build();
        var options = new GatewayOptions();
        options.Load(root);
        return (options, root);
    }

    private const string Auth = "auth: { token: 't' }";

    [Fact]
    public void SQLite_under_the_state_folder_is_the_default()
    {
        var (options, _) = Read($"{{ gateway: {{ {Auth} }} }}", ("OPENCLAW_STATE_DIR", "/srv/openclaw"));

        Assert.Empty(options.Problems);
        Assert.Equal(SessionStoreProvider.Sqlite, options.SessionStore.Provider);
        Assert.Equal("/srv/openclaw/gateway/sessions.db", options.SessionStore.SqlitePath);
        Assert.Equal("/srv/openclaw/gateway/sessions.db", new SqliteConnectionStringBuilder(options.SessionStore.ConnectionString).DataSource);
        Assert.Null(options.SessionStore.Retention);
    }

    [Fact]
    public void Without_a_state_folder_it_is_under_the_home_folder()
    {
        var (options, _) = Read($"{{ gateway: {{ {Auth} }} }}");

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".openclaw", "gateway", "sessions.db"), options.SessionStore.SqlitePath);
    }

    [Theory]
    [InlineData("/data/s.db", "/data/s.db")]
    [InlineData("Data Source=/data/other.db;Cache=Shared", "/data/other.db")]
    public void A_SQLite_connection_string_may_be_a_path_or_a_connection_string(string given, string path)
    {
        var (options, _) = Read($"{{ gateway: {{ {Auth}, sessions: {{ persistence: {{ provider: 'sqlite', connectionString: '{given}' }} }} }} }}");

        Assert.Empty(options.Problems);
        Assert.Equal(path, options.SessionStore.SqlitePath);
        Assert.Equal(path, new SqliteConnectionStringBuilder(options.SessionStore.ConnectionString).DataSource);
    }

    [Fact]
    public void PostgreSQL_takes_its_connection_string_from_a_variable()
    {
        var (options, _) = Read(
            $"{{ gateway: {{ {Auth}, sessions: {{ persistence: {{ provider: 'postgresql', connectionString: '${{GATEWAY_PG}}' }}, retentionDays: 30 }} }} }}",
            ("GATEWAY_PG", "Host=db;Database=gw;Username=u;Password=p"));

        Assert.Empty(options.Problems);
        Assert.Equal(SessionStoreProvider.PostgreSql, options.SessionStore.Provider);
        Assert.Equal("Host=db;Database=gw;Username=u;Password=p", options.SessionStore.ConnectionString);
        Assert.Equal(TimeSpan.FromDays(30), options.SessionStore.Retention);
    }

    [Theory]
    [InlineData("persistence: { provider: 'postgresql' }", "gateway.sessions.persistence.connectionString")]
    [InlineData("persistence: { provider: 'postgresql', connectionString: '${NOT_SET_ANYWHERE}' }", "gateway.sessions.persistence.connectionString")]
    [InlineData("persistence: { provider: 'mongodb' }", "gateway.sessions.persistence.provider")]
    [InlineData("retentionDays: -1", "gateway.sessions.retentionDays")]
    [InlineData("persistence: { provider: 'sqlite', connectionString: 'Data Source=x.db;Flavour=strawberry' }", "gateway.sessions.persistence.connectionString")]
    public void A_bad_store_config_is_a_problem_naming_its_key(string sessions, string key)
    {
        var (options, _) = Read($"{{ gateway: {{ {Auth}, sessions: {{ {sessions} }} }} }}");

        Assert.Contains(options.Problems, problem => problem.StartsWith(key, StringComparison.Ordinal));
    }

    [Fact]
    public void Memory_keeps_no_store()
    {
        var (options, _) = Read($"{{ gateway: {{ {Auth}, sessions: {{ persistence: {{ provider: 'memory' }} }} }} }}");

        Assert.Empty(options.Problems);
        Assert.False(options.SessionStore.Durable);
        Assert.Null(options.SessionStore.ConnectionString);
    }

    [Theory]
    [InlineData("openclaw.json5", SessionStoreProvider.Sqlite)]
    [InlineData("openclaw.postgres.json5", SessionStoreProvider.PostgreSql)]
    public void The_samples_read_without_problems(string sample, SessionStoreProvider provider)
    {
        var (options, _) = ReadFile(Path.Combine(RepositoryRoot(), "samples", sample), ("GATEWAY_PG", "Host=127.0.0.1;Database=gateway"));

        Assert.Empty(options.Problems);
        Assert.Equal(provider, options.SessionStore.Provider);
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
            if (File.Exists(Path.Combine(folder.FullName, "Gateway.sln"))) return folder.FullName;
        throw new InvalidOperationException("Gateway.sln not found above the test's folder.");
    }
}
