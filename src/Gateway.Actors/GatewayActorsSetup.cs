using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Akka.Streams;
using Gateway.Agents;
using Gateway.Actors.Sessions;
using Gateway.Streams.Lanes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Gateway.Actors;

public static class GatewayActorsSetup
{
    /// <summary>The services the actors use: agent runtimes (the built-in agent unless the host chose otherwise) and the live metrics.</summary>
    public static IServiceCollection AddGatewayActorServices(this IServiceCollection services)
    {
        services.AddSingleton<GatewayMetrics>();
        services.TryAddSingleton<IAgentRuntimeResolver, BuiltInAgentResolver>();
        return services;
    }

    /// <summary>
    /// Starts the session router and registers it under <see cref="SessionRouter"/>. Only the router
    /// is top-level; sessions and runs are its children.
    /// </summary>
    /// <param name="settings">Builds the session limits from the actor system's config and the app's options.</param>
    public static AkkaConfigurationBuilder WithGatewayActors(
        this AkkaConfigurationBuilder builder, Func<Config, IServiceProvider, SessionSettings> settings) =>
        builder.AddHocon(LeanMailbox.Hocon, HoconAddMode.Append).AddHocon(SessionJournalSerializer.Hocon, HoconAddMode.Append).WithActors((system, registry, resolver) =>
        {
            var services = resolver.GetService<IServiceProvider>();
            var router = StartSessionRouter(system, settings(system.Settings.Config, services),
                resolver.GetService<IAgentRuntimeResolver>(), resolver.GetService<GatewayMetrics>());
            registry.Register<SessionRouter>(router);
        });

    /// <summary>
    /// Starts the session router with everything below it (the lanes, the run slots, the session kinds):
    /// what <see cref="WithGatewayActors"/> registers. The actor system needs <see cref="LeanMailbox.Hocon"/>.
    /// </summary>
    public static IActorRef StartSessionRouter(ActorSystem system, SessionSettings sessionSettings, IAgentRuntimeResolver runtimes,
        GatewayMetrics metrics, string name = "sessions")
    {
        // Lanes get the lean mailbox too: an open stream's lane mostly waits for its model or its reader.
        var laneMaterializer = system.Materializer(ActorMaterializerSettings.Create(system).WithDispatcher(LeanMailbox.LaneDispatcherPath));
        var lanes = new RunLanes(laneMaterializer, sessionSettings.MaxIdleLanes, sessionSettings.LanesPerGraph, sessionSettings.StreamBuffer,
            sessionSettings.MaxRememberedReplyChars);
        // Only when runs are capped: otherwise a run needs no permission and costs no extra messages.
        var runSlots = sessionSettings.MaxConcurrentRuns is { } cap
            ? system.ActorOf(RunSlotsActor.Props(cap, sessionSettings.MaxWaitingRuns, metrics), $"{name}-run-slots")
            : null;
        // One Props for every session: each would otherwise carry its own Props, producer and deploy.
        var sessionProps = SessionActor.Props(sessionSettings, runtimes, lanes, metrics, runSlots, LeanMailbox.ConfigPath);
        var statelessProps = StatelessSessionActor.Props(sessionSettings, runtimes, lanes, metrics, runSlots, runMailbox: LeanMailbox.ConfigPath);
        return system.ActorOf(
            SessionRouterActor.Props(
                id => SessionKeyExtractor.IsStatelessEntity(id) ? statelessProps : sessionProps,
                new SessionKeyExtractor(sessionSettings.StatelessSessions),
                sessionSettings.MaxBufferedPerPassivatingSession,
                sessionSettings.PassivateAfter),
            name);
    }

    /// <summary>Reads <c>gateway.sessions</c> from HOCON over the defaults.</summary>
    public static SessionSettings FromHocon(Config config)
    {
        var section = config.GetConfig("gateway.sessions");
        var defaults = SessionSettings.Default;
        if (section is null || section.IsEmpty) return defaults;
        return defaults with
        {
            MaxQueuedTurns = section.GetInt("max-queued-turns", defaults.MaxQueuedTurns),
            MaxHistoryEntries = section.GetInt("max-history-entries", defaults.MaxHistoryEntries),
            StreamBuffer = AtLeastOne(section.GetInt("stream-buffer", defaults.StreamBuffer), "gateway.sessions.stream-buffer"),
            MaxBufferedPerPassivatingSession = section.GetInt("passivation-buffer", defaults.MaxBufferedPerPassivatingSession),
            MaxIdleLanes = section.GetInt("max-idle-lanes", defaults.MaxIdleLanes),
            LanesPerGraph = AtLeastOne(section.GetInt("lanes-per-graph", defaults.LanesPerGraph), "gateway.sessions.lanes-per-graph"),
            StatelessSessions = NotNegative(section.GetInt("stateless-sessions", defaults.StatelessSessions), "gateway.sessions.stateless-sessions"),
            MaxWaitingRuns = NotNegative(section.GetInt("max-waiting-runs", defaults.MaxWaitingRuns), "gateway.sessions.max-waiting-runs"),
            MaxRememberedReplyChars = NotNegative(section.GetInt("max-remembered-reply-chars", defaults.MaxRememberedReplyChars),
                "gateway.sessions.max-remembered-reply-chars"),
            IdleStatelessRuns = NotNegative(section.GetInt("idle-stateless-runs", defaults.IdleStatelessRuns), "gateway.sessions.idle-stateless-runs"),
        };
    }

    /// <summary>How durable sessions keep their journal, from <c>gateway.sessions</c> (the host decides whether sessions are durable).</summary>
    public static SessionJournalSettings JournalFromHocon(Config config, TimeSpan? retention)
    {
        var defaults = new SessionJournalSettings();
        var snapshotEvery = config.GetInt("gateway.sessions.snapshot-every", defaults.SnapshotEvery);
        return new SessionJournalSettings(AtLeastOne(snapshotEvery, "gateway.sessions.snapshot-every"), retention);
    }

    private static int AtLeastOne(int value, string key) =>
        value >= 1 ? value : throw new ConfigurationException($"{key} must be 1 or more (was {value}).");

    private static int NotNegative(int value, string key) =>
        value >= 0 ? value : throw new ConfigurationException($"{key} must be 0 or more (was {value}).");
}
