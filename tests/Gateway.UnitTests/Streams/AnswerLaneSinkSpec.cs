using System.Net.ServerSentEvents;
using System.Threading.Channels;
using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Akka.TestKit;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// The answer end of a lane, alone: each run's parts go to that run's end (its response), it asks for the next part only
/// when that end has room, and a run's last part (done, or the closing marker of a cancelled run) frees the lane.
/// </summary>
public sealed class AnswerLaneSinkSpec(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(PatientTestKit.Config, output: output)
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_5", 1767225600, "openclaw");
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    private static string Event(ChatStreamPart part) => ChatAnswerEnds.FormatEvent(Header, part);

    private static IAsyncEnumerable<AgentEvent> UnreadAgent() => TestAgents.Unread("The answer end must not read the agent.");

    // Not on any lane of the pool: the sink's hand-back to the pool is a no-op for it. Its reader hands over
    // its response at once; a slow one takes nothing until the spec reads, and a flush waits for it.
    private static StreamingRun NewRun(bool slowReader = false)
    {
        var run = new StreamingRun(UnreadAgent(), Header, includeUsage: false, promptTokenEstimate: 1, burstLimit: 1, null);
        if (slowReader) AnswerReader.Slow(run);
        else AnswerReader.Of(run);
        return run;
    }

    private AnswerLaneSink NewSink() => new(new RunLanes(Sys.Materializer()));

    private Task<List<string>> ReadAllAsync(StreamingRun run) => run.ReadAllDataAsync(RemainingOrDefault);

    private Task<string> ReadOneAsync(StreamingRun run) => run.ReadOneDataAsync(RemainingOrDefault);

    private sealed record Probed(TestPublisher.Probe<ChatStreamPart> Parts, TestProbe Pulls, AnswerLaneSink.Control Control);

    private Probed Materialize()
    {
        var pulls = CreateTestProbe();
        var (parts, control) = this.SourceProbe<ChatStreamPart>()
            .Via(new ReportPulls<ChatStreamPart>(pulls.Ref))
            .ToMaterialized(NewSink(), Keep.Both)
            .Run(Sys.Materializer());
        return new Probed(parts, pulls, control);
    }

    [Fact]
    public async Task Each_runs_parts_go_to_its_own_end_and_parts_outside_a_run_are_dropped()
    {
        var first = NewRun();
        var second = NewRun();

        Source.From<ChatStreamPart>(
            [
                new ContentPart("stray"),
                new RunOpened(first), RolePart.Instance, new ContentPart("one"), new FinishPart(FinishReasons.Stop), DonePart.Instance,
                new ContentPart("between runs"),
                new RunOpened(second), RolePart.Instance, new ContentPart("two"), new FinishPart(FinishReasons.Stop), DonePart.Instance,
            ])
            .RunWith(NewSink(), Sys.Materializer());

        Assert.Equal(
            [Event(RolePart.Instance), Event(new ContentPart("one")), Event(new FinishPart(FinishReasons.Stop)), "[DONE]"],
            await ReadAllAsync(first));
        Assert.Equal(
            [Event(RolePart.Instance), Event(new ContentPart("two")), Event(new FinishPart(FinishReasons.Stop)), "[DONE]"],
            await ReadAllAsync(second));
    }

    [Fact]
    public async Task A_closing_marker_ends_its_run_without_a_wire_event_and_the_lane_goes_on()
    {
        // The agent end cancelled the run (the reader left) before the answer end heard of it.
        var cancelled = NewRun();
        var next = NewRun();
        Source.From<ChatStreamPart>(
            [
                new RunOpened(cancelled), RolePart.Instance, new ContentPart("Hel"), RunCancelledPart.Instance,
                new RunOpened(next), RolePart.Instance, DonePart.Instance,
            ])
            .RunWith(NewSink(), Sys.Materializer());

        Assert.Equal([Event(RolePart.Instance), Event(new ContentPart("Hel"))], await ReadAllAsync(cancelled));
        Assert.Equal([Event(RolePart.Instance), "[DONE]"], await ReadAllAsync(next));
    }

    [Fact]
    public async Task It_asks_for_the_next_part_only_when_the_runs_response_has_room()
    {
        var stage = Materialize();
        var run = NewRun(slowReader: true);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        await stage.Parts.SendNextAsync(new RunOpened(run));
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        await stage.Parts.SendNextAsync(RolePart.Instance);
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();

        // The role's flush waits for the reader: this part waits in the sink, and nothing more is asked for.
        await stage.Parts.SendNextAsync(new ContentPart("a"));
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        Assert.Equal(Event(RolePart.Instance), await ReadOneAsync(run));
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();
        Assert.Equal(Event(new ContentPart("a")), await ReadOneAsync(run));
    }

    [Fact]
    public async Task Cancel_while_waiting_for_room_drops_the_rest_of_the_run_and_frees_the_lane()
    {
        var stage = Materialize();
        var run = NewRun(slowReader: true);
        var next = NewRun();
        await stage.Parts.SendNextAsync(new RunOpened(run));
        await stage.Parts.SendNextAsync(RolePart.Instance);
        await stage.Parts.SendNextAsync(new ContentPart("a"));
        await stage.Pulls.ReceiveNAsync(3, RemainingOrDefault).ToListAsync();
        await stage.Pulls.ExpectNoMsgAsync(Quiet);

        stage.Control.Cancel(run);

        await stage.Parts.SendNextAsync(new ContentPart("b"));
        await stage.Parts.SendNextAsync(RunCancelledPart.Instance);
        await stage.Parts.SendNextAsync(new RunOpened(next));
        await stage.Parts.SendNextAsync(RolePart.Instance);
        await stage.Parts.SendNextAsync(DonePart.Instance);
        Assert.Equal([Event(RolePart.Instance), "[DONE]"], await ReadAllAsync(next));
        // The reader who left finds what was written before, then the end; nothing after it left.
        Assert.Equal([Event(RolePart.Instance)], await ReadAllAsync(run));
    }

    [Fact]
    public async Task A_run_whose_reader_left_before_it_opened_here_is_dropped_though_no_response_was_handed_over()
    {
        var stage = Materialize();
        var left = new StreamingRun(UnreadAgent(), Header, includeUsage: false, promptTokenEstimate: 1, burstLimit: 1, null);
        var next = NewRun();
        await stage.Pulls.ExpectMsgAsync<ReportPulls<ChatStreamPart>.Pulled>();

        // The reader left as its run started: the cancel signal reaches this end before the run's first part.
        left.Cancel();
        stage.Control.Cancel(left);
        await stage.Parts.SendNextAsync(new RunOpened(left));
        await stage.Parts.SendNextAsync(RolePart.Instance);
        await stage.Parts.SendNextAsync(RunCancelledPart.Instance);
        await stage.Parts.SendNextAsync(new RunOpened(next));
        await stage.Parts.SendNextAsync(RolePart.Instance);
        await stage.Parts.SendNextAsync(DonePart.Instance);

        Assert.Equal([Event(RolePart.Instance), "[DONE]"], await ReadAllAsync(next));
        Assert.Empty(await ReadAllAsync(left));
    }
}
