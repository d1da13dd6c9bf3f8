using Gateway.Api.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Gateway.Api.Hosting;

/// <summary>
/// Opens the session database once as the gateway starts, before the actor system: a store that cannot be
/// opened (a folder that cannot be made, a locked or read-only file, a wrong password, a server that does not
/// answer) refuses the start with a message naming the key, instead of failing every turn later. For SQLite
/// it also switches the file to WAL, which lets the journal's writes and the sessions' reads go side by side
/// (the mode is kept in the file). Messages carry the driver's reason, never the connection string.
/// </summary>
public sealed class SessionStoreCheck : IValidateOptions<GatewayOptions>
{
    private const int TimeoutSeconds = 5;

    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        // Problems in the config itself are reported by the options validator; the store is tried only on a good config.
        if (options.Problems.Count > 0 || !options.SessionStore.Durable) return ValidateOptionsResult.Success;
        var problem = options.SessionStore.Provider == SessionStoreProvider.Sqlite ? CheckSqlite(options.SessionStore) : CheckPostgreSql(options.SessionStore);
        return problem is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problem);
    }

    private static string? CheckSqlite(SessionStoreOptions store)
    {
        var path = store.SqlitePath!;
        var where = $"{SessionStoreOptions.ConnectionStringKey}: cannot open the SQLite session database {path}";
        try
        {
            if (Path.GetDirectoryName(path) is { Length: > 0 } folder) Directory.CreateDirectory(folder);
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder(store.ConnectionString) { DefaultTimeout = TimeoutSeconds }.ConnectionString);
            connection.Open();
            if (Scalar(connection, "PRAGMA journal_mode=WAL;") is not "wal")
                return $"{where}: it cannot be switched to WAL mode (is it read-only?)";
            // A write (the header's user version, set to what it is) proves the file is neither read-only nor locked by another process.
            var version = Scalar(connection, "PRAGMA user_version;");
            Scalar(connection, $"BEGIN IMMEDIATE; PRAGMA user_version = {version}; COMMIT;");
            return null;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            return $"{where}: {ex.Message}";
        }
    }

    private static string? CheckPostgreSql(SessionStoreOptions store)
    {
        try
        {
            var connectionString = new NpgsqlConnectionStringBuilder(store.ConnectionString) { Timeout = TimeoutSeconds };
            using var connection = new NpgsqlConnection(connectionString.ConnectionString);
            connection.Open();
            using var command = new NpgsqlCommand("SELECT 1", connection);
            command.ExecuteScalar();
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or ArgumentException or InvalidOperationException or TimeoutException)
        {
            // Npgsql's messages name the host and the user at most, not the password.
            return $"{SessionStoreOptions.ConnectionStringKey}: cannot open the PostgreSQL session database: {ex.Message}";
        }
    }

    private static string? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar()?.ToString();
    }
}
