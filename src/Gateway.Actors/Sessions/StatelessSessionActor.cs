using Akka.Actor;
using Gateway.Agents;
using Gateway.Streams.Lanes;

namespace Gateway.Actors.Sessions;

/// <summary>
/// The session stateless turns run in (a request with neither a session key nor a <c>user</c>). Such
/// a turn remembers nothing and shares nothing, so there is no order to keep between turns: they run
/// side by side, each as its own supervised run (<see cref="AgentRunActor"/>, through the same
/// <see cref="TurnRunner"/> as <see cref="SessionActor"/>), and the session lives on between them. A
/// session per stateless request, started and stopped with it, cost a request two actor lifecycles and
/// a passivation round trip; the router keeps a few of these instead (<see cref="SessionKeyExtractor"/>
/// spreads stateless turns over them by session key). Run actors whose turn has ended are kept (a few,
/// <c>gateway.sessions.idle-stateless-runs</c>) for the next turns, which saves most requests an actor's
/// start and stop. Turns waiting for a run slot are bounded by the slots actor (429 beyond it).
/// </summary>
public sealed class StatelessSessionActor : UntypedActor
{
    private readonly TurnRunner _runner;

    public StatelessSessionActor(IAgentRuntimeResolver runtimes, Props runProps, IActorRef? runSlots = null, int maxIdleRuns = 32) =>
        _runner = new TurnRunner(Context, runtimes, runProps, runSlots, RunContext.StatelessSource, maxIdleRuns);

    /// <param name="runSlots">A <see cref="RunSlotsActor"/> to ask before each run; null: runs are not capped.</param>
    /// <param name="runMailbox">The mailbox (config path) of its runs; null: Akka's default. The session
    /// itself keeps Akka's default: it is busy, shared, and lives as long as the gateway.</param>
    public static Props Props(SessionSettings settings, IAgentRuntimeResolver runtimes, RunLanes lanes, GatewayMetrics metrics,
        IActorRef? runSlots = null, string? runMailbox = null)
    {
        var runProps = AgentRunActor.Props(settings, lanes, metrics, runMailbox);
        return Akka.Actor.Props.Create(() => new StatelessSessionActor(runtimes, runProps, runSlots, settings.IdleStatelessRuns));
    }

    protected override SupervisorStrategy SupervisorStrategy() => TurnRunner.StopFailedRuns;

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartTurn turn:
                _runner.Begin(turn, Sender);
                break;
            case CancelTurn cancel:
                _runner.Cancel(cancel);
                break;
            case ITurnRunnerMessage lifecycle:
                _runner.Handle(lifecycle);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    protected override void PostStop() => _runner.FailAll();
}
