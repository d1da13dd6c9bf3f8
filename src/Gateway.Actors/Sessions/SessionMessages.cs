using System.IO.Pipelines;
using Gateway.Streams.Lanes;
using Gateway.Actors.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Actors.Sessions;

/// <summary>A message routed to a session by its key (the routing key a shard region would use too).</summary>
public interface IWithSessionKey
{
    string SessionKey { get; }
}

/// <summary>Marker for the session router in the ActorRegistry (later: a cluster shard region).</summary>
public sealed class SessionRouter;

/// <summary>How the answer leaves the run: as SSE items, or folded into one completion.</summary>
public enum AnswerMode { Completion, Stream }

/// <summary>
/// Ask a session to run one agent turn. The reply is <see cref="TurnStreaming"/> (stream mode, as soon
/// as the run starts), <see cref="TurnCompleted"/> (completion mode, when it ends), or a
/// <c>Status.Failure</c> when the run could not start or crashed before answering.
/// </summary>
/// <param name="Stateless">The turn has no session of its own (no key, no user): it remembers nothing and runs in a
/// shared stateless session, or (with <c>stateless-sessions = 0</c>) in a session that ends with the turn.</param>
public sealed record StartTurn(
    string SessionKey,
    bool Stateless,
    AgentDefinition Agent,
    AgentInput Input,
    ChatAnswerHeader Header,
    AnswerMode Mode,
    bool IncludeUsage) : IWithSessionKey
{
    public string TurnId => Header.Id;
}

/// <summary>A message that only matters to a session that is alive: the router never starts a session for it.</summary>
public interface IForLiveSessionOnly : IWithSessionKey;

/// <summary>The client of a turn left (disconnected, or gave up waiting): drop it if queued, cancel it if running.</summary>
/// <param name="Stateless">The turn's <see cref="StartTurn.Stateless"/>: it tells the router where the turn went.</param>
public sealed record LeaveTurn(string SessionKey, string TurnId, bool Stateless = false) : IForLiveSessionOnly;

/// <summary>A streamed answer: read its events; abandon it when the reader goes away early.</summary>
public sealed record TurnStreaming(AnswerStream Answer);

/// <summary>A folded answer.</summary>
public sealed record TurnCompleted(ChatAnswer Answer);

/// <summary>
/// The reading end of a streamed answer: hand it the response to write its SSE events into, and
/// leave it early, which stops the run (safe to call from any thread, more than once).
/// </summary>
public sealed class AnswerStream(StreamingRun run)
{
    /// <inheritdoc cref="StreamingRun.WriteToAsync"/>
    public ValueTask WriteToAsync(PipeWriter body) => run.WriteToAsync(body);

    public void Abandon() => run.Cancel();
}

/// <summary>The session has too many turns waiting; the client should retry later.</summary>
public sealed class SessionBusyException(string sessionKey, int limit)
    : Exception($"Session '{sessionKey}' already has {limit} turns waiting.");

/// <summary>
/// Sent by a session to its parent to ask to be stopped (the same protocol as Akka's cluster sharding:
/// the parent buffers the session's messages until it has stopped, then starts it anew).
/// </summary>
public sealed record Passivate(object StopMessage);

/// <summary>A session with memory has no turn to run: its parent may passivate it once it has stayed idle long enough.</summary>
public sealed record SessionIdle
{
    public static SessionIdle Instance { get; } = new();
}

/// <summary>The parent's request that an idle session stop itself.</summary>
public sealed record StopSession
{
    public static StopSession Instance { get; } = new();
}

/// <summary>A session that was asked to stop received work meanwhile and keeps running.</summary>
public sealed record PassivationCancelled
{
    public static PassivationCancelled Instance { get; } = new();
}

/// <summary>How many sessions the router has alive now (for tests and diagnostics).</summary>
public sealed record GetSessionCount
{
    public static GetSessionCount Instance { get; } = new();
}

public sealed record SessionCount(int Live, int Passivating);
