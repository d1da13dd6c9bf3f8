using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Akka;
using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Gateway.Streams;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>The graphs a run is materialized into: the streamed answer read from a channel, and the folded one.</summary>
public sealed class ChatGraphsSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_42", 1767225600, "openclaw");
    private const int PromptTokens = 3;

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private StreamingRun Stream(Source<AgentEvent, NotUsed> agent, bool includeUsage = false, int channelCapacity = 16) =>
        ChatGraphs.RunStreaming(agent, Header, includeUsage, PromptTokens, channelCapacity, Sys.Materializer());

    private async Task<List<string>> ReadAllAsync(ChannelReader<SseItem<string>> events)
    {
        using var timeout = new CancellationTokenSource(RemainingOrDefault);
        var data = new List<string>();
        await foreach (var item in events.ReadAllAsync(timeout.Token))
            data.Add(item.Data);
        return data;
    }

    private async Task<string> ReadOneAsync(ChannelReader<SseItem<string>> events)
    {
        using var timeout = new CancellationTokenSource(RemainingOrDefault);
        return (await events.ReadAsync(timeout.Token)).Data;
    }

    [Fact]
    public async Task Reader_gets_the_sse_items_in_wire_order_ending_with_DONE()
    {
        var run = Stream(Source.From<AgentEvent>(
            [new TextDelta("Hel"), new TextDelta("lo"), new UsageReport(new TokenUsage(5, 2)), new RunEnded()]), includeUsage: true);

        Assert.Equal(
            [
                Event(RolePart.Instance),
                Event(new ContentPart("Hel")),
                Event(new ContentPart("lo")),
                Event(new FinishPart(FinishReasons.Stop)),
                Event(new UsagePart(new TokenUsage(5, 2))),
                "[DONE]",
            ],
            await ReadAllAsync(run.Events));
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Succeeded);
        Assert.Equal("Hello", outcome.ReplyText);
    }

    [Fact]
    public async Task Reader_gets_the_role_before_the_agent_says_anything()
    {
        var agent = this.SourceProbe<AgentEvent>();
        var (probe, source) = agent.PreMaterialize(Sys.Materializer());
        var run = Stream(source);

        Assert.Equal(Event(RolePart.Instance), await ReadOneAsync(run.Events));
        await probe.SendNextAsync(new TextDelta("Hi"));
        Assert.Equal(Event(new ContentPart("Hi")), await ReadOneAsync(run.Events));
        await probe.SendCompleteAsync();
        Assert.Equal([Event(new FinishPart(FinishReasons.Stop)), "[DONE]"], await ReadAllAsync(run.Events));
    }

    [Fact]
    public async Task Slow_reader_backpressures_the_agent()
    {
        const int capacity = 8;
        const int deltas = 1000;
        const int slack = 3; // the few elements in flight between the agent and the channel
        var pulled = 0;
        var agent = Source.From(Enumerable.Range(0, deltas))
            .Select(AgentEvent (i) =>
            {
                Interlocked.Increment(ref pulled);
                return new TextDelta($"{i} ");
            });

        var run = Stream(agent, channelCapacity: capacity);

        var read = new List<string>();
        for (var round = 0; round < 5; round++)
        {
            // The graph fills the channel, then waits for the reader.
            await AwaitConditionAsync(() => Task.FromResult(run.Events.Count == capacity));
            Assert.InRange(Volatile.Read(ref pulled), 0, read.Count + capacity + slack);

            for (var i = 0; i < 50; i++) read.Add(await ReadOneAsync(run.Events));
        }

        read.AddRange(await ReadAllAsync(run.Events));
        Assert.Equal(deltas, Volatile.Read(ref pulled));
        Assert.Equal(1 + deltas + 2, read.Count);
        Assert.Equal(Event(RolePart.Instance), read[0]);
        Assert.Equal(Event(new ContentPart("0 ")), read[1]);
        Assert.Equal(Event(new ContentPart("999 ")), read[deltas]);
        Assert.Equal([Event(new FinishPart(FinishReasons.Stop)), "[DONE]"], read[^2..]);
    }

    [Fact]
    public async Task Reader_that_falls_behind_at_the_end_still_gets_DONE()
    {
        // Role, three deltas, finish and done are six items; the channel holds two.
        var run = Stream(Source.From<AgentEvent>([new TextDelta("a"), new TextDelta("b"), new TextDelta("c")]), channelCapacity: 2);
        var read = new List<string>();
        for (var i = 0; i < 3; i++) read.Add(await ReadOneAsync(run.Events));

        // The run ends (done has been handed to the channel's writer) while the channel is still full.
        await run.Outcome.WaitAsync(RemainingOrDefault);
        read.AddRange(await ReadAllAsync(run.Events));

        Assert.Equal(
            [
                Event(RolePart.Instance), Event(new ContentPart("a")), Event(new ContentPart("b")), Event(new ContentPart("c")),
                Event(new FinishPart(FinishReasons.Stop)), "[DONE]",
            ],
            read);
    }

    [Fact]
    public async Task Reader_switch_shutdown_cancels_the_agent_and_the_outcome_is_cancelled()
    {
        var (probe, source) = this.SourceProbe<AgentEvent>().PreMaterialize(Sys.Materializer());
        var run = Stream(source);
        Assert.Equal(Event(RolePart.Instance), await ReadOneAsync(run.Events));
        await probe.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Event(new ContentPart("Hel")), await ReadOneAsync(run.Events));

        run.ReaderSwitch.Shutdown();

        await probe.ExpectCancellationAsync();
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.True(outcome.Cancelled);
        Assert.Equal("Hel", outcome.ReplyText);
        Assert.Empty(await ReadAllAsync(run.Events));
    }

    [Fact]
    public async Task Agent_switch_abort_ends_the_answer_in_band_with_an_error_then_DONE()
    {
        var (probe, source) = this.SourceProbe<AgentEvent>().PreMaterialize(Sys.Materializer());
        var run = Stream(source, includeUsage: true);
        Assert.Equal(Event(RolePart.Instance), await ReadOneAsync(run.Events));
        await probe.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Event(new ContentPart("Hel")), await ReadOneAsync(run.Events));
        var crash = new InvalidOperationException("run actor died");

        run.AgentSwitch.Abort(crash);

        await probe.ExpectCancellationAsync();
        Assert.Equal(["""{"error":{"message":"internal error","type":"api_error"}}""", "[DONE]"], await ReadAllAsync(run.Events));
        var outcome = await run.Outcome.WaitAsync(RemainingOrDefault);
        Assert.Same(crash, outcome.Error!.Cause);
        Assert.False(outcome.Cancelled);
    }

    [Fact]
    public async Task Agent_switch_abort_with_an_AgentRunException_shows_that_error_in_band()
    {
        var (probe, source) = this.SourceProbe<AgentEvent>().PreMaterialize(Sys.Materializer());
        var run = Stream(source);
        Assert.Equal(Event(RolePart.Instance), await ReadOneAsync(run.Events));
        var timedOut = new AgentRunException(new ChatError("agent run timed out", "api_error", "timeout", 504));

        run.AgentSwitch.Abort(timedOut);

        Assert.Equal(["""{"error":{"message":"agent run timed out","type":"api_error","code":"timeout"}}""", "[DONE]"],
            await ReadAllAsync(run.Events));
        Assert.Same(timedOut, (await run.Outcome.WaitAsync(RemainingOrDefault)).Error!.Cause);
    }

    [Fact]
    public async Task Completion_run_folds_the_answer_with_usage()
    {
        var run = ChatGraphs.RunCompletion(
            Source.From<AgentEvent>([new TextDelta("Hel"), new TextDelta("lo"), new RunEnded()]), Header, PromptTokens, Sys.Materializer());

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);

        var choice = Assert.Single(answer.Completion!.Choices);
        Assert.Equal("Hello", choice.Message.Content);
        Assert.Equal(new ChatUsage(PromptTokens, TokenEstimator.Estimate("Hello"), PromptTokens + TokenEstimator.Estimate("Hello")),
            answer.Completion.Usage);
        Assert.True((await run.Outcome.WaitAsync(RemainingOrDefault)).Succeeded);
    }

    [Fact]
    public async Task Completion_run_aborted_answers_with_the_error()
    {
        var (probe, source) = this.SourceProbe<AgentEvent>().PreMaterialize(Sys.Materializer());
        var run = ChatGraphs.RunCompletion(source, Header, PromptTokens, Sys.Materializer());
        await probe.SendNextAsync(new TextDelta("Hel"));
        var timeout = new ChatError("agent run timed out", "api_error", "timeout", 504);

        run.AgentSwitch.Abort(new AgentRunException(timeout));

        var answer = await run.Answer.WaitAsync(RemainingOrDefault);
        Assert.Null(answer.Completion);
        Assert.Equal(timeout, answer.Error!.Error);
    }
}
