using Gateway.Agents;
using Gateway.Actors.Sessions;
using Gateway.Streams;
using Gateway.Streams.Wire;
using Xunit.Abstractions;

namespace Gateway.UnitTests.Actors;

/// <summary>One run: how it answers its client (stream or folded answer), its timeout, and its metrics.</summary>
public sealed class AgentRunActorSpec(ITestOutputHelper output) : SessionSpecBase(output)
{
    [Fact]
    public async Task Streamed_turn_is_answered_at_once_and_the_role_comes_before_the_agent_says_anything()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));
        var client = CreateTestProbe();
        var turn = Turn(AliceKey, "hi", AnswerMode.Stream);

        router.Tell(turn, client.Ref);

        var answer = (await client.ExpectMsgAsync<TurnStreaming>()).Answer;
        var run = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal(Event(turn, RolePart.Instance), await ReadOneAsync(answer));
        await run.Agent.SendNextAsync(new TextDelta("Hello"));
        await run.Agent.SendCompleteAsync();
        Assert.Equal(
            [Event(turn, new ContentPart("Hello")), Event(turn, new FinishPart(FinishReasons.Stop)), "[DONE]"],
            await ReadAllAsync(answer));
    }

    [Fact]
    public async Task Streamed_built_in_turn_reads_role_content_finish_usage_then_DONE()
    {
        var router = Router(BuiltIn);
        var client = CreateTestProbe();
        var turn = Turn(AliceKey, "hi there", AnswerMode.Stream, includeUsage: true);
        var reply = BuiltInAgent.Reply(new AgentTurn(MainAgent, AliceKey, turn.Input, []));

        router.Tell(turn, client.Ref);
        var events = await ReadAllAsync((await client.ExpectMsgAsync<TurnStreaming>()).Answer);

        Assert.Equal(
            [
                Event(turn, RolePart.Instance),
                .. BuiltInAgent.Split(reply, null).Select(piece => Event(turn, new ContentPart(piece))),
                Event(turn, new FinishPart(FinishReasons.Stop)),
                Event(turn, new UsagePart(new TokenUsage(TokenEstimator.Estimate("hi there"), TokenEstimator.Estimate(reply)))),
                "[DONE]",
            ],
            events);
    }

    [Fact]
    public async Task Completion_turn_is_answered_with_the_folded_reply_and_usage()
    {
        var router = Router(BuiltIn);
        var client = CreateTestProbe();
        var turn = Turn(AliceKey, "hi there");
        var reply = BuiltInAgent.Reply(new AgentTurn(MainAgent, AliceKey, turn.Input, []));

        router.Tell(turn, client.Ref);
        var completion = (await client.ExpectMsgAsync<TurnCompleted>()).Completion;

        Assert.Equal(turn.TurnId, completion.Id);
        var choice = Assert.Single(completion.Choices);
        Assert.Equal(new ChatMessageOut("assistant", reply), choice.Message);
        Assert.Equal(FinishReasons.Stop, choice.FinishReason);
        Assert.Equal(ChatUsage.From(new TokenUsage(TokenEstimator.Estimate("hi there"), TokenEstimator.Estimate(reply))), completion.Usage);
    }

    [Fact]
    public async Task Streamed_run_longer_than_RunTimeout_ends_in_band_with_a_timeout_error()
    {
        var runs = CreateTestProbe();
        // Long enough for the first piece to be read on a loaded machine: the timeout must cut the run after it.
        var router = Router(Probed(runs), Settings(runTimeout: TimeSpan.FromSeconds(1.5)));
        var client = CreateTestProbe();
        var turn = Turn(AliceKey, "never answered", AnswerMode.Stream);

        router.Tell(turn, client.Ref);
        var answer = (await client.ExpectMsgAsync<TurnStreaming>()).Answer;
        var run = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal(Event(turn, RolePart.Instance), await ReadOneAsync(answer));
        await run.Agent.SendNextAsync(new TextDelta("Hel"));
        Assert.Equal(Event(turn, new ContentPart("Hel")), await ReadOneAsync(answer));

        Assert.Equal(
            [
                """{"error":{"message":"agent run timed out","type":"api_error","code":"timeout"}}""",
                "[DONE]",
            ],
            await ReadAllAsync(answer));
        await run.Agent.ExpectCancellationAsync();
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.ActiveRuns));
    }

    [Fact]
    public async Task Completion_run_longer_than_RunTimeout_is_answered_with_the_timeout_error()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs), Settings(runTimeout: TimeSpan.FromMilliseconds(300)));
        var client = CreateTestProbe();

        router.Tell(Turn(AliceKey, "never answered"), client.Ref);
        await runs.ExpectMsgAsync<RunStarted>();

        var failed = await client.ExpectMsgAsync<TurnFailed>();
        Assert.Equal(new ChatError("agent run timed out", "api_error", "timeout", 504), failed.Error);
    }

    [Fact]
    public async Task Metrics_count_runs_while_they_run_and_failures()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs));

        router.Tell(Turn(AliceKey, "one"), CreateTestProbe().Ref);
        var run = await runs.ExpectMsgAsync<RunStarted>();
        Assert.Equal((1, 1, 0), (Metrics.RunsStarted, Metrics.ActiveRuns, Metrics.RunsFailed));

        await run.Agent.SendErrorAsync(new InvalidOperationException("model connection reset"));

        await AwaitAssertAsync(() => Assert.Equal((1, 0, 1), (Metrics.RunsStarted, Metrics.ActiveRuns, Metrics.RunsFailed)));
    }
}
