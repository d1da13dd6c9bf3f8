namespace Gateway.Actors.Sessions;

/// <summary>
/// Where a message goes and what the entity receives: the shape of Akka's sharding
/// <c>IMessageExtractor</c>, so a shard region can take over routing without changes to the callers.
/// (Referencing Akka.Cluster.Sharding only for the interface would pull the whole cluster and a native
/// LightningDB into the gateway.)
/// </summary>
public interface ISessionMessageExtractor
{
    string? EntityId(object message);

    object EntityMessage(object message);
}

/// <summary>
/// Routes by session key. With <c>statelessSessions</c> above zero, stateless turns (and their
/// <see cref="CancelTurn"/>) go to one of that many shared <see cref="StatelessSessionActor"/> entities,
/// picked by the turn's session key; with zero, each stateless turn gets a session of its own.
/// </summary>
public sealed class SessionKeyExtractor : ISessionMessageExtractor
{
    // No client key can start with NUL: HTTP header values cannot hold it, and keys made from `user` start with "agent:".
    private const string StatelessEntityPrefix = "\0stateless/";

    private readonly string[] _statelessEntities;

    public SessionKeyExtractor(int statelessSessions = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(statelessSessions);
        _statelessEntities = Enumerable.Range(0, statelessSessions).Select(i => $"{StatelessEntityPrefix}{i}").ToArray();
    }

    /// <summary>Every stateless turn in a session of its own.</summary>
    public static SessionKeyExtractor Instance { get; } = new();

    /// <summary>Whether <paramref name="entityId"/> names a shared stateless session.</summary>
    public static bool IsStatelessEntity(string entityId) => entityId.StartsWith(StatelessEntityPrefix, StringComparison.Ordinal);

    public string? EntityId(object message) => message switch
    {
        StartTurn { Stateless: true } turn when _statelessEntities.Length > 0 => StatelessEntityFor(turn.SessionKey),
        CancelTurn { Stateless: true } cancel when _statelessEntities.Length > 0 => StatelessEntityFor(cancel.SessionKey),
        IWithSessionKey keyed => keyed.SessionKey,
        _ => null,
    };

    public object EntityMessage(object message) => message;

    private string StatelessEntityFor(string sessionKey) =>
        _statelessEntities[(uint)StringComparer.Ordinal.GetHashCode(sessionKey) % (uint)_statelessEntities.Length];
}
