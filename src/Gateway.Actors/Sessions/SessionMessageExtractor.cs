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

public sealed class SessionKeyExtractor : ISessionMessageExtractor
{
    public static SessionKeyExtractor Instance { get; } = new();

    public string? EntityId(object message) => (message as IWithSessionKey)?.SessionKey;

    public object EntityMessage(object message) => message;
}
