using Gateway.Streams.Lanes;
using Gateway.Agents;
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

/// <summary>Ask a session to run one agent turn; the reply is a <see cref="TurnReply"/>.</summary>
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

/// <summary>
/// The turn's reader left (disconnected, or gave up waiting): the session drops the turn if it is still
/// queued and cancels its run if it is running (the session passes this same message on to the run).
/// </summary>
/// <param name="Stateless">The turn's <see cref="StartTurn.Stateless"/>: it tells the router where the turn went.</param>
public sealed record CancelTurn(string SessionKey, string TurnId, bool Stateless = false) : IForLiveSessionOnly;

/// <summary>
/// Forget a session: its history is cleared, and a durable session's events and snapshots are deleted from the
/// journal. The reply is a <see cref="HistoryForgotten"/>. A turn running meanwhile is still remembered when it ends.
/// </summary>
public sealed record ForgetSession(string SessionKey) : IWithSessionKey;

/// <summary>
/// Have a session check its retention (<see cref="SessionJournalSettings.Retention"/>): a durable session that is not
/// alive recovers, and deletes its history when it has been idle for too long; the reply is <see cref="RetentionChecked"/>.
/// </summary>
public sealed record CheckRetention(string SessionKey) : IWithSessionKey;

public sealed record RetentionChecked
{
    public static RetentionChecked Instance { get; } = new();
}

/// <summary>
/// A run that succeeded asks its session to remember the turn before its answer ends (<see cref="Gateway.Streams.Lanes.IRunCommit"/>):
/// <paramref name="Done"/> completes with null once the turn is kept, or with the error the answer ends with instead.
/// </summary>
internal sealed record CommitTurn(string TurnId, string UserText, string ReplyText, TaskCompletionSource<ChatError?> Done);

/// <summary>The errors a turn gets when its session cannot keep it.</summary>
public static class SessionStoreErrors
{
    /// <summary>The session's journal could not read or write (the database is down, full, or read-only): retry later.</summary>
    public static ChatError Unavailable { get; } = new(
        "The session store is unavailable: this turn could not be recorded. Retry shortly.", "api_error", "session_store_unavailable", 503,
        RetryAfterSeconds: 1);

    /// <summary>The session stopped while the turn was being recorded (the gateway is shutting down).</summary>
    public static ChatError SessionStopped { get; } = TurnFailed.SessionStopped.Error;
}

/// <summary>
/// What a session answers a <see cref="StartTurn"/> with: <see cref="TurnStreaming"/> (stream mode, as soon as
/// the run starts), <see cref="TurnCompleted"/> (completion mode, when it ends), or <see cref="TurnFailed"/>
/// (the turn could not run or failed before answering). The edge switches over exactly these.
/// </summary>
public abstract record TurnReply
{
    private protected TurnReply()
    {
    }
}

/// <summary>A streamed answer: hand it the writer its parts go to; cancel it when the reader goes away early.</summary>
public sealed record TurnStreaming(AnswerStream Answer) : TurnReply;

/// <summary>A folded answer.</summary>
public sealed record TurnCompleted(ChatCompletion Completion) : TurnReply;

/// <summary>The turn failed before its answer began; <paramref name="Error"/> is safe to show (its status, its Retry-After).</summary>
public sealed record TurnFailed(ChatError Error) : TurnReply
{
    public static TurnFailed Internal { get; } = new(ChatError.Internal);

    /// <summary>Too many turns wait already (for this session, or for a run slot): 429, retry shortly.</summary>
    public static TurnFailed Busy(string what) => new(new ChatError(what, "rate_limit_error", null, 429, RetryAfterSeconds: 1));

    /// <summary>The session stopped before the turn could run (the gateway is shutting down).</summary>
    public static TurnFailed SessionStopped { get; } = new(new ChatError("The session stopped before this turn could run.", "api_error", null, 503));
}

/// <summary>
/// The reading end of a streamed answer: hand it the writer its parts go to, and cancel it when the
/// reader leaves early, which stops the run (safe from any thread, more than once).
/// </summary>
public sealed class AnswerStream(StreamingRun run)
{
    /// <inheritdoc cref="StreamingRun.WriteToAsync"/>
    public ValueTask WriteToAsync(IAnswerWriter writer) => run.WriteToAsync(writer);

    public void Cancel() => run.Cancel();

    /// <summary>What every chunk of the answer shares (its id, creation time and model).</summary>
    public ChatAnswerHeader Header => run.Header;
}

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
