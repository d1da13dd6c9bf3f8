using Akka.Actor;

namespace Gateway.Actors.Sessions;

/// <summary>
/// Caps agent runs across sessions (<c>agents.defaults.maxConcurrent</c>, spec §5): a session asks for
/// a slot before it starts a run and gives it back when the run ends. Excess requests wait in arrival
/// order, up to <c>maxWaiting</c> of them (<c>gateway.sessions.max-waiting-runs</c>); beyond that a request
/// is refused (<see cref="RunSlotRefused"/>: the client gets 429). A session that stops gives back what
/// it held or waited for.
/// </summary>
public sealed class RunSlotsActor : ReceiveActor
{
    private readonly int _capacity;
    private readonly int _maxWaiting;
    private readonly GatewayMetrics? _metrics;
    private readonly HashSet<(IActorRef Session, string TurnId)> _held = [];
    private readonly LinkedList<(IActorRef Session, string TurnId)> _waiting = new();
    private readonly Dictionary<IActorRef, int> _entriesBySession = new();

    public RunSlotsActor(int capacity, int maxWaiting, GatewayMetrics? metrics = null)
    {
        _capacity = capacity;
        _maxWaiting = maxWaiting;
        _metrics = metrics;
        Receive<AcquireRunSlot>(acquire =>
        {
            if (_held.Count >= _capacity && _waiting.Count >= _maxWaiting)
            {
                Sender.Tell(new RunSlotRefused(acquire.TurnId));
                return;
            }
            Track(Sender);
            _waiting.AddLast((Sender, acquire.TurnId));
            GrantWhileFree();
        });
        Receive<ReleaseRunSlot>(release =>
        {
            var entry = (Sender, release.TurnId);
            if (_held.Remove(entry) || RemoveWaiting(entry)) Untrack(Sender);
            GrantWhileFree();
        });
        Receive<Terminated>(terminated =>
        {
            _held.RemoveWhere(entry => entry.Session.Equals(terminated.ActorRef));
            for (var node = _waiting.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Session.Equals(terminated.ActorRef)) _waiting.Remove(node);
                node = next;
            }
            _entriesBySession.Remove(terminated.ActorRef);
            GrantWhileFree();
        });
        Receive<GetRunSlots>(_ => Sender.Tell(new RunSlots(_held.Count, _waiting.Count)));
    }

    public static Props Props(int capacity, int maxWaiting, GatewayMetrics? metrics = null) =>
        Akka.Actor.Props.Create(() => new RunSlotsActor(capacity, maxWaiting, metrics));

    private void GrantWhileFree()
    {
        while (_held.Count < _capacity && _waiting.First is { } first)
        {
            _waiting.RemoveFirst();
            _held.Add(first.Value);
            first.Value.Session.Tell(new RunSlotGranted(first.Value.TurnId));
        }
        _metrics?.SetWaitingForRunSlot(_waiting.Count);
    }

    private bool RemoveWaiting((IActorRef Session, string TurnId) entry)
    {
        for (var node = _waiting.First; node is not null; node = node.Next)
        {
            if (!node.Value.Equals(entry)) continue;
            _waiting.Remove(node);
            return true;
        }
        return false;
    }

    private void Track(IActorRef session)
    {
        if (_entriesBySession.TryGetValue(session, out var count))
        {
            _entriesBySession[session] = count + 1;
            return;
        }
        _entriesBySession[session] = 1;
        Context.Watch(session);
    }

    private void Untrack(IActorRef session)
    {
        if (!_entriesBySession.TryGetValue(session, out var count)) return;
        if (count > 1)
        {
            _entriesBySession[session] = count - 1;
            return;
        }
        _entriesBySession.Remove(session);
        Context.Unwatch(session);
    }
}

/// <summary>A session asks for a slot to run <paramref name="TurnId"/>; the answer is <see cref="RunSlotGranted"/>, when one is free.</summary>
public sealed record AcquireRunSlot(string TurnId);

public sealed record RunSlotGranted(string TurnId) : ITurnRunnerMessage;

/// <summary>Too many requests wait for a slot already: the turn is refused.</summary>
public sealed record RunSlotRefused(string TurnId) : ITurnRunnerMessage;

/// <summary>Gives a slot back after the run, or withdraws a request still waiting.</summary>
public sealed record ReleaseRunSlot(string TurnId);

public sealed record GetRunSlots
{
    public static GetRunSlots Instance { get; } = new();
}

public sealed record RunSlots(int Held, int Waiting);
