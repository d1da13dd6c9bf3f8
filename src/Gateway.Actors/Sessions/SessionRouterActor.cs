using Akka.Actor;
using Akka.Event;

namespace Gateway.Actors.Sessions;

/// <summary>
/// A child-per-entity parent: routes each message by its entity id to that entity's child, creating
/// it on first use. It speaks sharding's passivation protocol: a child asks to stop with
/// <see cref="Passivate"/>; until it has stopped, the router holds (a bounded number of) its messages
/// and then starts the entity anew with them. A shard region can replace it without changing callers.
/// </summary>
public sealed class SessionRouterActor : ReceiveActor
{
    private readonly Func<string, Props> _entityProps;
    private readonly ISessionMessageExtractor _extractor;
    private readonly int _maxBufferedPerEntity;
    private readonly Dictionary<string, IActorRef> _entities = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _idsByRef = new();
    private readonly Dictionary<string, List<(object Message, IActorRef Sender)>> _passivating = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private long _spawned;

    public SessionRouterActor(Func<string, Props> entityProps, ISessionMessageExtractor extractor, int maxBufferedPerEntity)
    {
        _entityProps = entityProps;
        _extractor = extractor;
        _maxBufferedPerEntity = maxBufferedPerEntity;

        Receive<Passivate>(OnPassivate);
        Receive<PassivationCancelled>(_ => OnPassivationCancelled(Sender));
        Receive<Terminated>(terminated => OnEntityTerminated(terminated.ActorRef));
        Receive<GetSessionCount>(_ => Sender.Tell(new SessionCount(_entities.Count, _passivating.Count)));
        ReceiveAny(Route);
    }

    public static Props Props(Func<string, Props> entityProps, ISessionMessageExtractor extractor, int maxBufferedPerEntity) =>
        Akka.Actor.Props.Create(() => new SessionRouterActor(entityProps, extractor, maxBufferedPerEntity));

    /// <summary>Entities stop themselves on request; a crashing one is stopped, never restarted with lost state.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(Decider.From(Directive.Stop));

    private void Route(object message)
    {
        if (_extractor.EntityId(message) is not { } id)
        {
            Unhandled(message);
            return;
        }
        var entityMessage = _extractor.EntityMessage(message);
        if (_passivating.TryGetValue(id, out var buffer))
        {
            if (buffer.Count >= _maxBufferedPerEntity)
            {
                Sender.Tell(new Status.Failure(new SessionBusyException(id, _maxBufferedPerEntity)));
                return;
            }
            buffer.Add((entityMessage, Sender));
            return;
        }
        if (message is IForLiveSessionOnly && !_entities.ContainsKey(id)) return;
        EntityFor(id).Forward(entityMessage);
    }

    private IActorRef EntityFor(string id)
    {
        if (_entities.TryGetValue(id, out var existing)) return existing;
        // A fresh name per incarnation: a recreated session never races its predecessor's name.
        var entity = Context.ActorOf(_entityProps(id), $"session-{++_spawned}");
        Context.Watch(entity);
        _entities[id] = entity;
        _idsByRef[entity] = id;
        return entity;
    }

    private void OnPassivate(Passivate passivate)
    {
        if (!_idsByRef.TryGetValue(Sender, out var id)) return;
        if (_passivating.ContainsKey(id)) return;
        _passivating[id] = [];
        Sender.Tell(passivate.StopMessage);
    }

    private void OnPassivationCancelled(IActorRef entity)
    {
        if (!_idsByRef.TryGetValue(entity, out var id) || !_passivating.Remove(id, out var buffer)) return;
        foreach (var (message, sender) in buffer) entity.Tell(message, sender);
    }

    private void OnEntityTerminated(IActorRef entity)
    {
        if (!_idsByRef.Remove(entity, out var id)) return;
        _entities.Remove(id);
        if (!_passivating.Remove(id, out var buffer) || buffer.Count == 0) return;
        _log.Debug("Session {0} received {1} message(s) while stopping; starting it again", id, buffer.Count);
        var fresh = EntityFor(id);
        foreach (var (message, sender) in buffer) fresh.Tell(message, sender);
    }
}
