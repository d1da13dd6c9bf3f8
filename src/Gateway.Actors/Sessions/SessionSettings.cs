namespace Gateway.Actors.Sessions;

/// <summary>The limits sessions and runs live by (from config; see GatewayOptions in the API).</summary>
/// <param name="PassivateAfter">An idle session with memory is stopped after this long.</param>
/// <param name="MaxQueuedTurns">Turns that may wait behind a running one in one session.</param>
/// <param name="MaxHistoryEntries">Messages a session remembers (oldest dropped first).</param>
/// <param name="RunTimeout">A run longer than this is ended with an error.</param>
/// <param name="StreamBuffer">Parts a streamed answer writes before a flush at the latest (<see cref="Gateway.Streams.Lanes.RunLanes"/>).</param>
/// <param name="MaxBufferedPerPassivatingSession">Messages the router holds for a session while it stops.</param>
/// <param name="MaxIdleLanes">Answer lanes (materialized run graphs) kept for the next runs when idle.</param>
/// <param name="LanesPerGraph">Lanes made together as one graph, sharing one interpreter actor (<see cref="Gateway.Streams.Lanes.RunLanes"/>).</param>
/// <param name="MaxConcurrentRuns">Runs across all sessions at once (<c>agents.defaults.maxConcurrent</c>); null: no cap.</param>
/// <param name="StatelessSessions">Shared sessions stateless turns run in (<see cref="StatelessSessionActor"/>); 0: a session per stateless turn.</param>
/// <param name="MaxWaitingRuns">Turns that may wait for a run slot when runs are capped; more get 429.</param>
/// <param name="IdleStatelessRuns">Run actors a stateless session keeps for its next turns.</param>
/// <param name="MaxRememberedReplyChars">The most of a reply a session remembers (the rest still streams).</param>
/// <param name="Journal">How sessions with memory keep it in the journal (Akka.Persistence); null: in memory only.</param>
public sealed record SessionSettings(
    TimeSpan PassivateAfter,
    int MaxQueuedTurns,
    int MaxHistoryEntries,
    TimeSpan RunTimeout,
    int StreamBuffer,
    int MaxBufferedPerPassivatingSession,
    int MaxIdleLanes = 256,
    int? MaxConcurrentRuns = null,
    int StatelessSessions = 0,
    int LanesPerGraph = 1,
    int MaxWaitingRuns = 1024,
    int IdleStatelessRuns = 32,
    int MaxRememberedReplyChars = 64 * 1024,
    SessionJournalSettings? Journal = null)
{
    /// <summary>Enough shared stateless sessions to keep every core busy starting runs.</summary>
    public static int DefaultStatelessSessions => Math.Max(2, Environment.ProcessorCount);

    public static SessionSettings Default { get; } = new(
        PassivateAfter: TimeSpan.FromMinutes(30),
        MaxQueuedTurns: 64,
        MaxHistoryEntries: 200,
        RunTimeout: TimeSpan.FromSeconds(600),
        StreamBuffer: 64,
        MaxBufferedPerPassivatingSession: 256,
        StatelessSessions: DefaultStatelessSessions,
        LanesPerGraph: 8);
}
