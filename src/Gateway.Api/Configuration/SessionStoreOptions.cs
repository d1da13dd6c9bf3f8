using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;

namespace Gateway.Api.Configuration;

public enum SessionStoreProvider { Sqlite, PostgreSql, Memory }

/// <summary>
/// Where sessions with memory keep it (<c>gateway.sessions.persistence</c>): an embedded SQLite file (the
/// default: <c>$OPENCLAW_STATE_DIR/gateway/sessions.db</c>, else <c>~/.openclaw/gateway/sessions.db</c>),
/// a PostgreSQL database (for several nodes), or memory only (lost on restart).
/// </summary>
/// <param name="ConnectionString">The connection string the journal uses; null for memory. Holds secrets: never log it.</param>
/// <param name="SqlitePath">The SQLite file, for messages and the start check.</param>
/// <param name="Retention">A session idle for longer is deleted (<c>gateway.sessions.retentionDays</c>); null: kept.</param>
public sealed record SessionStoreOptions(SessionStoreProvider Provider, string? ConnectionString, string? SqlitePath, TimeSpan? Retention)
{
    public const string StateDirectoryVariable = "OPENCLAW_STATE_DIR";
    public const string ProviderKey = "gateway.sessions.persistence.provider";
    public const string ConnectionStringKey = "gateway.sessions.persistence.connectionString";
    public const string RetentionKey = "gateway.sessions.retentionDays";

    public bool Durable => Provider != SessionStoreProvider.Memory;

    /// <summary>The provider's name as the config spells it.</summary>
    public string ProviderName => Provider switch
    {
        SessionStoreProvider.Sqlite => "sqlite",
        SessionStoreProvider.PostgreSql => "postgresql",
        _ => "memory",
    };

    public static SessionStoreOptions Load(IConfiguration root, ConfigReader reader)
    {
        var retention = reader.Number(reader.Section(RetentionKey), 0.00001, 100_000) is { } days ? TimeSpan.FromDays(days) : (TimeSpan?)null;
        var provider = reader.OneOf(reader.Section(ProviderKey), "sqlite", "postgresql", "memory") switch
        {
            "postgresql" => SessionStoreProvider.PostgreSql,
            "memory" => SessionStoreProvider.Memory,
            _ => SessionStoreProvider.Sqlite,
        };
        var connectionSection = reader.Section(ConnectionStringKey);
        var connectionString = reader.StringOrVariable(connectionSection);
        switch (provider)
        {
            case SessionStoreProvider.Memory:
                return new SessionStoreOptions(provider, null, null, retention);
            case SessionStoreProvider.PostgreSql:
                if (connectionString is null && !reader.Errors.Any(error => error.StartsWith(ConnectionStringKey, StringComparison.Ordinal)))
                    reader.Error($"{ConnectionStringKey}: provider 'postgresql' needs a connection string (\"Host=…;Database=…;Username=…;Password=…\", or \"${{ENV_VAR}}\")");
                return new SessionStoreOptions(provider, connectionString, null, retention);
            default:
                try
                {
                    var path = SqlitePathFrom(connectionString) ?? DefaultSqlitePath(root);
                    var sqlite = new SqliteConnectionStringBuilder(LooksLikeConnectionString(connectionString) ? connectionString : "")
                    {
                        DataSource = path,
                        Mode = SqliteOpenMode.ReadWriteCreate,
                        Pooling = true,
                    };
                    return new SessionStoreOptions(provider, sqlite.ConnectionString, path, retention);
                }
                catch (ArgumentException ex)
                {
                    // The message names the bad keyword, never the value.
                    reader.Error(connectionSection, $"not a SQLite file path or connection string: {ex.Message}");
                    return new SessionStoreOptions(provider, null, null, retention);
                }
        }
    }

    /// <summary>The default SQLite file: under the state folder OpenClaw uses.</summary>
    public static string DefaultSqlitePath(IConfiguration root)
    {
        var stateDirectory = root[StateDirectoryVariable] is { Length: > 0 } fromEnvironment
            ? OpenClawConfigFile.ExpandHome(fromEnvironment)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".openclaw");
        return Path.GetFullPath(Path.Combine(stateDirectory, "gateway", "sessions.db"));
    }

    // For SQLite, connectionString may be a file path or a full connection string ("Data Source=…;…").
    private static bool LooksLikeConnectionString(string? value) => value is not null && value.Contains('=');

    private static string? SqlitePathFrom(string? connectionString)
    {
        if (connectionString is null) return null;
        var path = LooksLikeConnectionString(connectionString) ? new SqliteConnectionStringBuilder(connectionString).DataSource : connectionString;
        return string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(OpenClawConfigFile.ExpandHome(path));
    }
}
