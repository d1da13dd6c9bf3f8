using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Akka;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Akka.TestKit;
using Gateway.Actors;
using Gateway.Agents;
using Gateway.Actors.Sessions;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Gateway.UnitTests.Streams;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Actors;

/// <summary>An agent runtime made of a function, so each spec says what its agent does.</summary>
public sealed class TestRuntime(Func<AgentTurn, IAsyncEnumerable<AgentEvent>> run) : IAgentRuntime, IAgentRuntimeResolver
{
    /// <summary>An agent driven by a stream (a publisher probe, say), read one event per pull.</summary>
    public static TestRuntime FromSource(Func<AgentTurn, Source<AgentEvent, NotUsed>> run, IMaterializer materializer) =>
        new(turn => run(turn).RunAsAsyncEnumerableBuffer(materializer, 1, 1));

    public IAsyncEnumerable<AgentEvent> Run(AgentTurn turn) => run(turn);

    public IAgentRuntime Resolve(AgentDefinition agent) => this;
}

/// <summary>Resolves every agent to one runtime except <see cref="BrokenAgent"/>, for which it throws (as a misconfigured provider would).</summary>
public sealed class PickyResolver(IAgentRuntime runtime) : IAgentRuntimeResolver
{
    public static AgentDefinition BrokenAgent { get; } = new("broken", null, BuiltInAgentSettings.Default);

    public IAgentRuntime Resolve(AgentDefinition agent) =>
        agent.Id == BrokenAgent.Id ? throw new InvalidOperationException($"no runtime for '{agent.Id}'") : runtime;
}

/// <summary>A run the test drives: the turn it was started for, and the agent's publisher probe.</summary>
public sealed record RunStarted(AgentTurn Turn, TestPublisher.Probe<AgentEvent> Agent);

/// <summary>
/// Session specs build the router the way production does (router → session → run), with metrics and a
/// test runtime, and talk to it with Tell from test probes standing in for HTTP clients.
/// </summary>
/// <param name="config">The actor system's config; null: <see cref="PatientTestKit.Config"/>.</param>
public abstract class SessionSpecBase(ITestOutputHelper output, Akka.Configuration.Config? config = null)
    : Akka.TestKit.Xunit2.TestKit(config ?? PatientTestKit.Config, output: output)
{
    protected const string AliceKey = "agent:main:openai-user:alice";
    protected const string BobKey = "agent:main:openai-user:bob";

    protected static readonly AgentDefinition MainAgent = new("main", null, BuiltInAgentSettings.Default);
    protected static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(200);

    private int _turns;
    private int _routers;

    protected GatewayMetrics Metrics { get; } = new();

    /// <summary>
    /// The settings production reads from akka.hocon (this test kit's config), with what a spec changes. Stateless
    /// turns get a session of their own unless a spec asks for shared ones.
    /// </summary>
    protected SessionSettings Settings(
        TimeSpan? passivateAfter = null, int maxQueuedTurns = 64, TimeSpan? runTimeout = null, int streamBuffer = 16) =>
        GatewayActorsSetup.FromHocon(Sys.Settings.Config) with
        {
            PassivateAfter = passivateAfter ?? TimeSpan.FromMinutes(30),
            MaxQueuedTurns = maxQueuedTurns,
            RunTimeout = runTimeout ?? TimeSpan.FromMinutes(10),
            StreamBuffer = streamBuffer,
            StatelessSessions = 0,
        };

    /// <summary>The session router, started as production starts it (<see cref="GatewayActorsSetup.StartSessionRouter"/>).</summary>
    protected IActorRef Router(IAgentRuntimeResolver resolver, SessionSettings? settings = null) =>
        GatewayActorsSetup.StartSessionRouter(Sys, settings ?? Settings(), resolver, Metrics, $"sessions-{Interlocked.Increment(ref _routers)}");

    /// <summary>The run slots production starts beside <paramref name="router"/> when runs are capped.</summary>
    protected async Task<IActorRef> RunSlotsOfAsync(IActorRef router) =>
        await Sys.ActorSelection(router.Path.Parent / $"{router.Path.Name}-run-slots").ResolveOne(RemainingOrDefault);

    protected static TestRuntime BuiltIn { get; } = new(new BuiltInAgent().Run);

    /// <summary>Each run's agent is a fresh publisher probe, announced to <paramref name="runs"/>.</summary>
    protected TestRuntime Probed(TestProbe runs) => TestRuntime.FromSource(turn =>
        this.SourceProbe<AgentEvent>().MapMaterializedValue(agent =>
        {
            runs.Tell(new RunStarted(turn, agent));
            return NotUsed.Instance;
        }), Sys.Materializer());

    protected StartTurn Turn(string key, string message, AnswerMode mode = AnswerMode.Completion,
        bool stateless = false, bool includeUsage = false) =>
        new(key, stateless, MainAgent, new AgentInput(message),
            new ChatAnswerHeader($"chatcmpl_{Interlocked.Increment(ref _turns)}", 1767225600, "openclaw"), mode, includeUsage);

    /// <summary>A stateless turn, keyed the way the API keys one: a fresh key per request.</summary>
    protected StartTurn StatelessTurn(string message, AnswerMode mode = AnswerMode.Completion) =>
        Turn($"agent:main:openai:{Guid.NewGuid()}", message, mode, stateless: true);

    protected static string ReplyText(TurnCompleted completed) => Assert.Single(completed.Completion.Choices).Message.Content!;

    protected async Task<string> AskForReplyAsync(IActorRef router, StartTurn turn)
    {
        var client = CreateTestProbe();
        router.Tell(turn, client.Ref);
        return ReplyText(await client.ExpectMsgAsync<TurnCompleted>());
    }

    protected async Task<SessionCount> SessionCountAsync(IActorRef router)
    {
        var probe = CreateTestProbe();
        router.Tell(GetSessionCount.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<SessionCount>();
    }

    protected Task<string> ReadOneAsync(AnswerStream answer) => answer.ReadOneDataAsync(RemainingOrDefault);

    protected Task<List<string>> ReadAllAsync(AnswerStream answer) => answer.ReadAllDataAsync(RemainingOrDefault);

    protected static string Event(StartTurn turn, ChatStreamPart part) => ChatAnswerEnds.FormatEvent(turn.Header, part);

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Metrics.Dispose();
    }
}
