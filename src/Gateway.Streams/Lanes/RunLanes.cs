using System.Collections.Concurrent;
using Akka.Streams;
using Akka.Streams.Dsl;
using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// Where agent runs become answers: a pool of lanes, each one materialized Akka.Streams graph
/// (<see cref="AgentLaneSource"/> → <see cref="WireOrderStage"/> → <see cref="AnswerLaneSink"/>, fused into
/// one interpreter) that carries one run at a time, run after run. Materializing a graph per request
/// cost several times a bare HTTP request; a lane is materialized once and reused, so a run costs only
/// its own events. A run holds its lane from start to its last part, so a slow reader holds up its own
/// lane only; the pool makes a new lane whenever none is free, and keeps at most <c>maxIdleLanes</c>
/// idle ones for the next runs.
/// Lanes are made <c>lanesPerGraph</c> at a time, as one graph of that many unconnected lanes: they
/// share one interpreter (one actor, one mailbox), whose memory an open stream would otherwise hold
/// alone. Each lane still carries its own run and backpressures on its own; a lane that is shut down
/// stops alone, and the interpreter stops with its last lane.
/// Buffers on the way: one event between stages, the few parts of an ending, and the writer's own
/// bounded buffer (a streamed run writes into it and the lane waits while a flush waits for the reader);
/// nothing else, so a slow reader slows the agent.
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

    /// <param name="burstLimit">Parts a streamed answer writes before a flush at the latest (it flushes sooner when a burst ends).</param>
    /// <param name="maxRememberedReplyChars">The most reply text a run's outcome carries for its session's memory.</param>
    public RunLanes(IMaterializer materializer, int maxIdleLanes = 256, int lanesPerGraph = 1, int burstLimit = 64,
        int maxRememberedReplyChars = WireOrderStage.MaxRememberedReplyChars)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxIdleLanes);
        ArgumentOutOfRangeException.ThrowIfLessThan(lanesPerGraph, 1);
        _materializer = materializer;
        _maxIdleLanes = maxIdleLanes;
        // A graph's other lanes wait idle for the next runs: making more than the idle cap can keep would
        // shut the rest down as soon as they are made.
        lanesPerGraph = (int)Math.Min(lanesPerGraph, maxIdleLanes + 1L);
        var lane = Source.FromGraph(new AgentLaneSource())
            .Via(new WireOrderStage(maxRememberedReplyChars))
            .ToMaterialized(new AnswerLaneSink(burstLimit), (agent, answer) => new Lane(this, agent, answer));
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

    /// <summary>Starts a streamed answer: its parts go to the writer the reader hands over (<see cref="StreamingRun.WriteToAsync"/>).</summary>
    /// <param name="onText">Told the length of each text delta (a metric of what agents produce).</param>
    /// <param name="listener">Told the run's outcome as it happens.</param>
    /// <param name="remembersReply">Whether the outcome carries the reply text (false: nobody remembers it, so it is not kept).</param>
    /// <param name="commit">What the answer's end waits for when the run succeeds (its session recording the turn); null: nothing.</param>
    public StreamingRun StartStreaming(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, bool includeUsage,
        int promptTokenEstimate, Action<int>? onText = null, IRunListener? listener = null, bool remembersReply = true,
        IRunCommit? commit = null)
    {
        var run = new StreamingRun(agent, header, includeUsage, promptTokenEstimate, onText, listener, remembersReply, commit);
        Rent().Carry(run);
        return run;
    }

    /// <summary>Starts a folded answer: one <c>chat.completion</c> (always with usage), or the run's error.</summary>
    public CompletionRun StartCompletion(IAsyncEnumerable<AgentEvent> agent, ChatAnswerHeader header, int promptTokenEstimate,
        Action<int>? onText = null, IRunListener? listener = null, bool remembersReply = true, IRunCommit? commit = null)
    {
        var run = new CompletionRun(agent, header, promptTokenEstimate, onText, listener, remembersReply, commit);
        Rent().Carry(run);
        return run;
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

    private void KeepIdleOrShutDown(Lane lane)
    {
        if (Interlocked.Increment(ref _idleCount) <= _maxIdleLanes)
        {
            _idle.Enqueue(lane);
            return;
        }
        Interlocked.Decrement(ref _idleCount);
        lane.ShutDown();
    }

    private static void FailOnStoppedLane(AnswerRun run)
    {
        var failure = new InvalidOperationException("The answer's lane stopped.");
        run.Close(failure);
        run.SetOutcome(new TurnOutcome("", null, null, new ErrorPart(ChatError.Internal, failure), Cancelled: false));
    }

    /// <summary>
    /// One materialized lane: the entries into its two ends, the run it carries, and what its answer end
    /// tells the pool. It listens to its run's <see cref="AnswerRun.Stopping"/> and passes a stop on to both ends.
    /// </summary>
    private sealed class Lane : AnswerLaneSink.IOwner
    {
        private readonly RunLanes _pool;
        private readonly AgentLaneSource.Control _agent;
        private readonly AnswerLaneSink.Control _answer;
        // One delegate for every run of the lane: a stop's registration costs the run no closure.
        private readonly Action<object?> _onRunStopping;
        private CancellationTokenRegistration _stopRegistration;
        // The run on this lane now; null while idle. A field, for the fenced write in Carry.
        private AnswerRun? _run;

        public Lane(RunLanes pool, AgentLaneSource.Control agent, AnswerLaneSink.Control answer)
        {
            _pool = pool;
            _agent = agent;
            _answer = answer;
            _onRunStopping = state => OnRunStopping((AnswerRun)state!);
            answer.Owner = this;
        }

        public bool Stopped => _answer.Stopped;

        public void Carry(AnswerRun run)
        {
            // A full fence between this write and the read of Stopped below, as between the lane's stop flag and
            // its read of the run (OnLaneStopped): whichever comes second sees the other, so the run cannot be lost.
            Interlocked.Exchange(ref _run, run);
            // Before the start, which the lane's thread sees after it (OnRunDone unregisters it there). A run
            // stopped already is ended by the agent end as it starts, so the interruption this sends now may be missed.
            _stopRegistration = run.Stopping.UnsafeRegister(_onRunStopping, run);
            _agent.Start(run);
            // Only a lane stopping right now (the actor system shutting down) drops the start: fail the run here,
            // as OnLaneStopped would have (both may: ending a run twice is harmless).
            if (Stopped) FailOnStoppedLane(run);
        }

        public void ShutDown() => _agent.Shutdown();

        private void OnRunStopping(AnswerRun run)
        {
            // Both ends, in this order (one interpreter runs the signals in turn): the agent end stops reading the
            // agent before the answer end, which may be waiting for room from the reader who left, asks for more.
            _agent.Interrupt(run);
            _answer.Interrupt(run);
        }

        void AnswerLaneSink.IOwner.OnRunDone(AnswerRun run)
        {
            // Not disposed: Dispose would wait for a stop running on another thread right now.
            _stopRegistration.Unregister();
            _run = null;
            _pool.KeepIdleOrShutDown(this);
        }

        void AnswerLaneSink.IOwner.OnLaneStopped()
        {
            Interlocked.Decrement(ref _pool._liveCount);
            // A lane stops with a run on it only when the actor system shuts down (or a bug breaks the
            // graph): that run's reader and its session must not wait forever.
            if (Volatile.Read(ref _run) is { } run) FailOnStoppedLane(run);
        }
    }
}
