using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Gateway.Actors.Sessions;
using Gateway.Api.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Hosting;

/// <summary>
/// Forgets sessions idle for longer than <c>gateway.sessions.retentionDays</c> even when nobody opens them again:
/// from time to time it lists the sessions in the journal and has each one check itself (a session that is not
/// alive recovers, deletes its history when it is too old, and passivates). A session opened by a client is
/// checked as it recovers, so an expired history is never read. A few sessions are checked at a time, so a
/// sweep over many costs the gateway little.
/// </summary>
public sealed class SessionRetentionSweep(
    ActorSystem system, IRequiredActor<SessionRouter> sessions, IOptions<GatewayOptions> options, ILogger<SessionRetentionSweep> log)
    : BackgroundService
{
    private const int ChecksAtOnce = 4;
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan LongestInterval = TimeSpan.FromHours(6);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.SessionStore.Retention is not { } retention) return;
        // Often enough that nothing outlives its retention by more than half of it (or six hours).
        var interval = TimeSpan.FromTicks(Math.Min(retention.Ticks / 2, LongestInterval.Ticks));
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                await SweepAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The gateway is stopping.
        }
    }

    private async Task SweepAsync(CancellationToken stoppingToken)
    {
        var router = await sessions.GetAsync(stoppingToken);
        try
        {
            var checkedSessions = await PersistenceQuery.Get(system)
                .ReadJournalFor<SqlReadJournal>("akka.persistence.query.journal.sql")
                .CurrentPersistenceIds()
                .Select(SessionJournalActor.SessionKeyOf)
                .Where(key => key is not null)
                .SelectAsync(ChecksAtOnce, key => router.Ask<RetentionChecked>(new CheckRetention(key!), CheckTimeout, stoppingToken))
                .RunWith(Sink.Aggregate<RetentionChecked, int>(0, (count, _) => count + 1), system.Materializer());
            log.LogDebug("Retention sweep: {Count} session(s) checked", checkedSessions);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            // The store may be down for a while: the next sweep tries again.
            log.LogWarning("Retention sweep failed: {Reason}", ex.Message);
        }
    }
}
