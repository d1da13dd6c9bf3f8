using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Gateway.Streams.Wire;

namespace Gateway.Streams;

/// <summary>
/// The graphs an agent run is materialized into: agent events → kill switch → wire order → an end.
/// Each graph is one fused island (no async boundary), so a run costs one graph interpreter.
/// Buffers on the way: the wire stage holds at most the few parts of the ending; the streaming end
/// adds a reader-side kill switch and one bounded channel of <c>channelCapacity</c> SSE items, and the channel waits (backpressures)
/// when full. Nothing else buffers, so a slow reader slows the agent.
/// </summary>
public static class ChatGraphs
{
    public static StreamingRun RunStreaming(
        Source<AgentEvent, NotUsed> agent, ChatAnswerHeader header, bool includeUsage, int promptTokenEstimate,
        int channelCapacity, IMaterializer materializer, Action<int>? onText = null)
    {
        var (((agentSwitch, outcome), readerSwitch), events) = agent
            .ViaMaterialized(KillSwitches.Single<AgentEvent>(), Keep.Right)
            .ViaMaterialized(new WireOrderStage(includeUsage, promptTokenEstimate) { OnText = onText }, Keep.Both)
            .Via(ChatAnswerEnds.ServerSentEvents(header))
            .ViaMaterialized(KillSwitches.Single<SseItem<string>>(), Keep.Both)
            .ToMaterialized(ChannelSink.AsReader<SseItem<string>>(channelCapacity, singleReader: true), Keep.Both)
            .Run(materializer);
        return new StreamingRun(agentSwitch, readerSwitch, outcome, events);
    }

    public static CompletionRun RunCompletion(
        Source<AgentEvent, NotUsed> agent, ChatAnswerHeader header, int promptTokenEstimate, IMaterializer materializer,
        Action<int>? onText = null)
    {
        var ((agentSwitch, outcome), answer) = agent
            .ViaMaterialized(KillSwitches.Single<AgentEvent>(), Keep.Right)
            .ViaMaterialized(new WireOrderStage(includeUsage: true, promptTokenEstimate) { OnText = onText }, Keep.Both)
            .ToMaterialized(ChatAnswerEnds.Completion(header), Keep.Both)
            .Run(materializer);
        return new CompletionRun(agentSwitch, outcome, answer);
    }
}

/// <param name="AgentSwitch">Aborting it ends the answer in-band (an error event, then [DONE]).</param>
/// <param name="ReaderSwitch">Shutting it down tears the graph down from the reader's end (the client left).</param>
public sealed record StreamingRun(UniqueKillSwitch AgentSwitch, UniqueKillSwitch ReaderSwitch, Task<TurnOutcome> Outcome, ChannelReader<SseItem<string>> Events);

/// <param name="AgentSwitch">Aborting it ends the run; the answer then carries the error.</param>
public sealed record CompletionRun(UniqueKillSwitch AgentSwitch, Task<TurnOutcome> Outcome, Task<ChatAnswer> Answer);
