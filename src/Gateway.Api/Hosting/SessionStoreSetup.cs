using Akka.Configuration;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using System.Data.Common;
using Gateway.Api.Configuration;
using LinqToDB;
using LinqToDB.Interceptors;

namespace Gateway.Api.Hosting;

/// <summary>
/// The journal and snapshot store of durable sessions: Akka.Persistence.Sql (linq2db underneath), one code
/// path for SQLite and PostgreSQL, tables made at first start. Memory needs no plugin.
/// </summary>
public static class SessionStoreSetup
{
    /// <summary>
    /// SQLite takes one writer at a time, and Microsoft.Data.Sqlite polls for a lock that is taken (it sleeps
    /// 150 ms between tries). So: one write stream (several would only queue on the lock; writes still go in
    /// batches of every event that queued meanwhile), and reads in deferred transactions, which the driver
    /// begins only for read-uncommitted (any other level begins IMMEDIATE, taking the write lock for a read:
    /// every new session's recovery then collided with the writes, 0.01 of the memory store's turns per second
    /// and +455 ms at p99 in the bench). Without a shared cache, read-uncommitted reads exactly what any WAL
    /// reader reads: the last committed state.
    /// </summary>
    private const string SqliteHocon = """
        akka.persistence.journal.sql { parallelism = 1, read-isolation-level = read-uncommitted }
        akka.persistence.snapshot-store.sql.read-isolation-level = read-uncommitted
        akka.persistence.query.journal.sql.read-isolation-level = read-uncommitted
        """;

    public static AkkaConfigurationBuilder WithSessionStore(this AkkaConfigurationBuilder builder, SessionStoreOptions store)
    {
        if (!store.Durable) return builder;
        var (journal, snapshots) = SqlOptions(store);
        builder.WithSqlPersistence(journal, snapshots);
        return store.Provider == SessionStoreProvider.Sqlite ? builder.AddHocon(SqliteHocon, HoconAddMode.Prepend) : builder;
    }

    /// <summary>The plugins' config as <see cref="WithSessionStore"/> adds it, for an actor system built without the host (tests).</summary>
    public static Config Hocon(SessionStoreOptions store)
    {
        var (journal, snapshots) = SqlOptions(store);
        var config = journal.ToConfig().WithFallback(snapshots.ToConfig()).WithFallback(journal.DefaultConfig).WithFallback(snapshots.DefaultConfig);
        return store.Provider == SessionStoreProvider.Sqlite ? ConfigurationFactory.ParseString(SqliteHocon).WithFallback(config) : config;
    }

    private static (SqlJournalOptions Journal, SqlSnapshotOptions Snapshots) SqlOptions(SessionStoreOptions store)
    {
        var provider = store.Provider == SessionStoreProvider.Sqlite ? LinqToDB.ProviderName.SQLiteMS : LinqToDB.ProviderName.PostgreSQL;
        var journal = new SqlJournalOptions(isDefaultPlugin: true)
        {
            ConnectionString = store.ConnectionString!,
            ProviderName = provider,
            AutoInitialize = true,
        };
        var snapshots = new SqlSnapshotOptions(isDefaultPlugin: true)
        {
            ConnectionString = store.ConnectionString!,
            ProviderName = provider,
            AutoInitialize = true,
        };
        if (store.Provider == SessionStoreProvider.Sqlite)
        {
            var data = new DataOptions().UseConnectionString(provider, store.ConnectionString!).UseInterceptor(SqliteBusyTimeout.Instance);
            journal.DataOptions = data;
            snapshots.DataOptions = data;
        }
        return (journal, snapshots);
    }

    /// <summary>
    /// Lets SQLite itself wait for a lock another of the gateway's connections holds (a snapshot or a delete
    /// beside the journal's write), in steps of a few milliseconds. Without it Microsoft.Data.Sqlite retries a
    /// busy statement every 150 ms, which put 150-450 ms on a turn whenever two writes met.
    /// </summary>
    private sealed class SqliteBusyTimeout : ConnectionInterceptor
    {
        public static SqliteBusyTimeout Instance { get; } = new();

        private const string Pragma = "PRAGMA busy_timeout = 10000;";

        public override void ConnectionOpened(ConnectionEventData eventData, DbConnection connection)
        {
            using var command = Command(connection);
            command.ExecuteNonQuery();
        }

        public override async Task ConnectionOpenedAsync(ConnectionEventData eventData, DbConnection connection, CancellationToken cancellationToken)
        {
            await using var command = Command(connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        private static DbCommand Command(DbConnection connection)
        {
            var command = connection.CreateCommand();
            command.CommandText = Pragma;
            return command;
        }
    }
}
