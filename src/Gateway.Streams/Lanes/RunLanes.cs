using System.Collections.Concurrent;
using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// Where agent runs become answers: a pool of lanes, each one materialized Akka.Streams graph
/// (agent end → wire order → answer end, fused into one interpreter) that carries one run at a time,
/// run after run. Materializing a graph per request cost several times a bare HTTP request; a lane is
/// materialized once and reused, so a run costs only its own events. A run holds its lane from start
/// to its last part, so a slow reader holds up its own lane only; the pool makes a new lane whenever
/// none is free, and keeps at most <c>maxIdleLanes</c> idle ones for the next runs.
/// Lanes are made <c>lanesPerGraph</c> at a time, as one graph of that many unconnected lanes: they
/// share one interpreter (one actor, one mailbox), whose memory an open stream would otherwise hold
/// alone. Each lane still carries its own run and backpressures on its own; a lane that is shut down
/// stops alone, and the interpreter stops with its last lane.
/// Buffers on the way: one event between stages, the few parts of an ending, and the response's own
/// bounded buffer (a streamed run writes into it and waits while a flush waits for the reader); nothing
/// else, so a slow reader slows the agent.
/// </summary>
public sealed class RunLanes
{
    private readonly IMaterializer _materializer;
    private readonly int _maxIdleLanes;
    private readonly ConcurrentQueue<Lane> _idle = new();
    // Fused once: materializing a fused graph skips the fusing step, which is a good part of the cost.
    private readonly IRunnableGraph<Lane[]> _blueprint;
    private int _idleCount;
    private int _liveCount;

    public RunLanes(IMaterializer materializer, int maxIdleLanes = 256, int lanesPerGraph = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxIdleLanes);
        ArgumentOutOfRangeException.ThrowIfLessThan(lanesPerGraph, 1);
        _materializer = materializer;
        _maxIdleLanes = maxIdleLanes;
        // A graph's other lanes wait idle for the next runs: making more than the idle cap can keep would
        // shut the rest down as soon as they are made.
        lanesPerGraph = (int)Math.Min(lanesPerGraph, maxIdleLanes + 1L);
        var lane = Source.FromGraph(new AgentLaneSource())
            .Via(new WireOrderStage())
            .ToMaterialized(new AnswerLaneSink(this), static (agent, answer) => new Lane(agent, answer));
        IGraph<ClosedShape, Lane[]> graph = lane.MapMaterializedValue(static first => new[] { first });
        for (var i = 1; i < lanesPerGraph; i++)
        {
            graph = GraphDsl.Create<ClosedShape, Lane[], Lane[], Lane, ClosedShape, ClosedShape>(
                graph, lane, static (lanes, next) => [.. lanes, next], static (_, _, _) => ClosedShape.Instance);
        }
        _blueprint = RunnableGraph.FromGraph(Akka.Streams.Fusing.Aggressive(graph));
    }

    /// <summary>Lanes alive now (carrying a run, or idle).</summary>
    public int LiveLanes => Volatile.Read(ref _liveCount);

    public int IdleLanes => Volatile.Read(ref _idleCount);

    /// <summary>
    /// Starts a streamed answer: SSE events ending with [DONE], written into the response the reader hands
    /// over (<see cref="StreamingRun.WriteToAsync"/>) and flushed per burst, or after <paramref name="burstLimit"/> parts.
    /// </summary>
    /// <param name="onText">Told the length of each text delta (a metric of what agents produce).</param>
    /// <param name="listener">Told the run's outcome as it happens.</param>
    /// <param name="remembersReply">Whether the outcome carries the reply text (false: nobody remembers it, so it is not kept).</param>
    public StreamingRun StartStreaming(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage,
        int promptTokenEstimate, int burstLimit, Action<int>? onText = null, IRunListener? listener = null, bool remembersReply = true)
    {
        var run = new StreamingRun(agent, header, includeUsage, promptTokenEstimate, burstLimit, onText, listener, remembersReply);
        Assign(run);
        return run;
    }

    /// <summary>Starts a folded answer: one <c>chat.completion</c> (always with usage), or the run's error.</summary>
    public CompletionRun StartCompletion(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, int promptTokenEstimate,
        Action<int>? onText = null, IRunListener? listener = null, bool remembersReply = true)
    {
        var run = new CompletionRun(agent, header, promptTokenEstimate, onText, listener, remembersReply);
        Assign(run);
        return run;
    }

    private void Assign(AnswerRun run)
    {
        var lane = Rent();
        run.Lane = lane;
        // A full fence between this write and the read of Stopped below, as between the lane's stop flag and
        // its read of Run (OnLaneStopped): whichever comes second sees the other, so the run cannot be lost.
        Interlocked.Exchange(ref lane.Run, run);
        lane.Agent.Start(run);
        // Only a lane stopping right now (the actor system shutting down) drops the start: fail the run here,
        // as OnLaneStopped would have (both may: ending a run twice is harmless).
        if (lane.Stopped) FailOnStoppedLane(run);
    }

    private Lane Rent()
    {
        while (_idle.TryDequeue(out var idle))
        {
            Interlocked.Decrement(ref _idleCount);
            if (!idle.Stopped) return idle;
        }
        var made = _blueprint.Run(_materializer);
        Interlocked.Add(ref _liveCount, made.Length);
        // The graph's other lanes wait for the next runs, as lanes handed back do.
        for (var i = 1; i < made.Length; i++) KeepIdleOrShutDown(made[i]);
        return made[0];
    }

    /// <summary>Called by a lane's answer end after a run's last part.</summary>
    internal void Return(AnswerRun run)
    {
        if (run.Lane is not { } lane) return;
        lane.Run = null;
        KeepIdleOrShutDown(lane);
    }

    private void KeepIdleOrShutDown(Lane lane)
    {
        if (Interlocked.Increment(ref _idleCount) <= _maxIdleLanes)
        {
            _idle.Enqueue(lane);
            return;
        }
        Interlocked.Decrement(ref _idleCount);
        lane.Agent.Shutdown();
    }

    /// <summary>Called by a lane's answer end as the lane stops, on the lane's thread.</summary>
    internal void OnLaneStopped(AnswerLaneSink.Control answer)
    {
        Interlocked.Decrement(ref _liveCount);
        if (answer.Lane is not { } lane) return;
        // A lane stops with a run on it only when the actor system shuts down (or a bug breaks the
        // graph): that run's reader and its session must not wait forever.
        if (Volatile.Read(ref lane.Run) is { } run) FailOnStoppedLane(run);
    }

    private static void FailOnStoppedLane(AnswerRun run)
    {
        var failure = new InvalidOperationException("The answer's lane stopped.");
        run.Close(failure);
        run.SetOutcome(new TurnOutcome("", null, null, new ErrorPart(ChatError.Internal, failure), Cancelled: false));
    }
}

/// <summary>One materialized lane: the entries into its two ends.</summary>
internal sealed class Lane
{
    public Lane(AgentLaneSource.Control agent, AnswerLaneSink.Control answer)
    {
        Agent = agent;
        Answer = answer;
        answer.Lane = this;
    }

    public AgentLaneSource.Control Agent { get; }

    public AnswerLaneSink.Control Answer { get; }

    /// <summary>The run on this lane now; null while idle. A field, for the fenced write in <see cref="RunLanes"/>.</summary>
    public AnswerRun? Run;

    public bool Stopped => Answer.Stopped;

    public void Abort(AnswerRun run, Exception cause) => Agent.Abort(run, cause);

    public void Cancel(AnswerRun run)
    {
        // Both ends, in this order (one interpreter runs the callbacks in turn): the agent end stops reading
        // the agent before the answer end, which may be waiting for room from the reader who left, asks for more.
        Agent.Cancel(run);
        Answer.Cancel(run);
    }
}
