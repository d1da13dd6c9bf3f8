using Akka.Actor;
using Akka.Event;

namespace Gateway.Actors.Sessions;

/// <summary>
/// A child-per-entity parent: routes each message by its entity id to that entity's child, creating
/// it on first use. It speaks sharding's passivation protocol: a child asks to stop with
/// <see cref="Passivate"/>; until it has stopped, the router holds (a bounded number of) its messages
/// and then starts the entity anew with them. Like a shard's <c>passivate-idle-entity-after</c>, it
/// passivates entities that said they are idle (<see cref="SessionIdle"/>) and received nothing for
/// the idle time, checked by one periodic sweep rather than a timer per entity. A shard region can
/// replace it without changing callers.
/// </summary>
public sealed class SessionRouterActor : ReceiveActor, IWithTimers
{
    private readonly Func<string, Props> _entityProps;
    private readonly ISessionMessageExtractor _extractor;
    private readonly int _maxBufferedPerEntity;
    private readonly Dictionary<string, IActorRef> _entities = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _idsByRef = new();
    private readonly Dictionary<string, List<(object Message, IActorRef Sender)>> _passivating = new(StringComparer.Ordinal);
    // Entities that said they are idle, and since when (Environment.TickCount64); a message for one removes it.
    private readonly Dictionary<string, long> _idleSince = new(StringComparer.Ordinal);
    private readonly TimeSpan _passivateIdleAfter;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private long _spawned;

    /// <param name="passivateIdleAfter">How long an idle entity lives on; <see cref="Timeout.InfiniteTimeSpan"/>: for ever.</param>
    public SessionRouterActor(Func<string, Props> entityProps, ISessionMessageExtractor extractor, int maxBufferedPerEntity,
        TimeSpan passivateIdleAfter)
    {
        _entityProps = entityProps;
        _extractor = extractor;
        _maxBufferedPerEntity = maxBufferedPerEntity;
        _passivateIdleAfter = passivateIdleAfter;

        Receive<Passivate>(OnPassivate);
        Receive<SessionIdle>(_ => OnEntityIdle(Sender));
        Receive<SweepIdle>(_ => PassivateIdleEntities());
        Receive<PassivationCancelled>(_ => OnPassivationCancelled(Sender));
        Receive<Terminated>(terminated => OnEntityTerminated(terminated.ActorRef));
        Receive<GetSessionCount>(_ => Sender.Tell(new SessionCount(_entities.Count, _passivating.Count)));
        ReceiveAny(Route);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(Func<string, Props> entityProps, ISessionMessageExtractor extractor, int maxBufferedPerEntity,
        TimeSpan passivateIdleAfter) =>
        Akka.Actor.Props.Create(() => new SessionRouterActor(entityProps, extractor, maxBufferedPerEntity, passivateIdleAfter));

    protected override void PreStart()
    {
        if (_passivateIdleAfter == Timeout.InfiniteTimeSpan) return;
        // An entity passivates between one and one and a quarter idle times after its last turn.
        var sweep = TimeSpan.FromTicks(Math.Clamp(_passivateIdleAfter.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond * 10));
        Timers.StartPeriodicTimer(SweepIdle.Instance, SweepIdle.Instance, sweep);
    }

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
                // Only a turn is answered: the other messages for a session (a cancel) need no reply.
                if (entityMessage is StartTurn) Sender.Tell(TurnFailed.Busy($"Session '{id}' already has {_maxBufferedPerEntity} messages waiting."));
                return;
            }
            buffer.Add((entityMessage, Sender));
            return;
        }
        if (message is IForLiveSessionOnly && !_entities.ContainsKey(id)) return;
        _idleSince.Remove(id);
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
        StartPassivating(id, Sender, passivate.StopMessage);
    }

    private void StartPassivating(string id, IActorRef entity, object stopMessage)
    {
        if (_passivating.ContainsKey(id)) return;
        _idleSince.Remove(id);
        _passivating[id] = [];
        entity.Tell(stopMessage);
    }

    private void OnEntityIdle(IActorRef entity)
    {
        if (_passivateIdleAfter == Timeout.InfiniteTimeSpan || !_idsByRef.TryGetValue(entity, out var id) || _passivating.ContainsKey(id)) return;
        _idleSince[id] = Environment.TickCount64;
    }

    private void PassivateIdleEntities()
    {
        if (_idleSince.Count == 0) return;
        var idleBefore = Environment.TickCount64 - (long)_passivateIdleAfter.TotalMilliseconds;
        List<string>? due = null;
        foreach (var (id, since) in _idleSince)
            if (since <= idleBefore) (due ??= []).Add(id);
        if (due is null) return;
        // An entity that got work meanwhile answers with PassivationCancelled and says idle again later.
        foreach (var id in due) StartPassivating(id, _entities[id], StopSession.Instance);
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
        _idleSince.Remove(id);
        if (!_passivating.Remove(id, out var buffer) || buffer.Count == 0) return;
        _log.Debug("Session {0} received {1} message(s) while stopping; starting it again", id, buffer.Count);
        var fresh = EntityFor(id);
        foreach (var (message, sender) in buffer) fresh.Tell(message, sender);
    }
}

/// <summary>The router's periodic look for entities idle long enough to passivate.</summary>
internal sealed record SweepIdle
{
    public static SweepIdle Instance { get; } = new();
}
