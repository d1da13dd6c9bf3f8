using Gateway.Actors.Sessions;
using Xunit.Abstractions;
using Gateway.Agents;

namespace Gateway.UnitTests.Actors;

/// <summary>Spec §5: one session per key, kept while in use, passivated when idle, recreated on demand.</summary>
public sealed class SessionRouterSpec(ITestOutputHelper output) : SessionSpecBase(output)
{
    [Fact]
    public async Task Same_key_reuses_the_session_and_its_memory()
    {
        var router = Router(BuiltIn);

        var first = await AskForReplyAsync(router, Turn(AliceKey, "remember the cat"));
        var second = await AskForReplyAsync(router, Turn(AliceKey, "what did I say?"));

        Assert.Contains("This session holds no earlier turns.", first);
        Assert.Contains("received: \"what did I say?\"", second);
        Assert.Contains("This session holds 1 earlier turn(s); the last one said: \"remember the cat\".", second);
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        Assert.Equal(1, Metrics.LiveSessions);
    }

    [Fact]
    public async Task Another_key_gets_its_own_session()
    {
        var router = Router(BuiltIn);

        await AskForReplyAsync(router, Turn(AliceKey, "remember the cat"));
        var bobs = await AskForReplyAsync(router, Turn(BobKey, "what did I say?"));

        Assert.Contains("This session holds no earlier turns.", bobs);
        Assert.Equal(new SessionCount(2, 0), await SessionCountAsync(router));
        Assert.Equal(2, Metrics.LiveSessions);
    }

    [Fact]
    public async Task Idle_stateful_session_passivates_and_the_next_turn_recreates_it_with_empty_memory()
    {
        var router = Router(BuiltIn, Settings(passivateAfter: TimeSpan.FromMilliseconds(200)));

        await AskForReplyAsync(router, Turn(AliceKey, "remember the cat"));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.LiveSessions), TimeSpan.FromSeconds(3));
        Assert.Equal(new SessionCount(0, 0), await SessionCountAsync(router));

        var afterwards = await AskForReplyAsync(router, Turn(AliceKey, "what did I say?"));

        Assert.Contains("This session holds no earlier turns.", afterwards);
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));
        Assert.Equal(1, Metrics.LiveSessions);
    }

    [Fact]
    public async Task Busy_session_is_not_passivated_while_its_turn_runs()
    {
        var runs = CreateTestProbe();
        var router = Router(Probed(runs), Settings(passivateAfter: TimeSpan.FromMilliseconds(100)));
        var client = CreateTestProbe();

        router.Tell(Turn(AliceKey, "slow question"), client.Ref);
        var run = await runs.ExpectMsgAsync<RunStarted>();
        await client.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(400)); // several passivation periods
        Assert.Equal(new SessionCount(1, 0), await SessionCountAsync(router));

        await run.Agent.SendNextAsync(new TextDelta("slow answer"));
        await run.Agent.SendCompleteAsync();
        Assert.Equal("slow answer", ReplyText(await client.ExpectMsgAsync<TurnCompleted>()));
    }

    [Fact]
    public async Task Stateless_session_stops_as_soon_as_its_turn_ends()
    {
        var router = Router(BuiltIn); // passivation after 30 minutes: only statelessness can stop it

        await AskForReplyAsync(router, StatelessTurn("hi"));

        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.LiveSessions), TimeSpan.FromSeconds(3));
        Assert.Equal(new SessionCount(0, 0), await SessionCountAsync(router));
    }

    [Fact]
    public async Task Turn_arriving_while_its_session_stops_is_answered_by_a_new_session()
    {
        var router = Router(BuiltIn);
        var key = $"agent:main:openai:{Guid.NewGuid()}";
        var first = CreateTestProbe();
        var second = CreateTestProbe();

        // The second turn reaches the router around the time the first session asks to stop.
        router.Tell(Turn(key, "one", stateless: true), first.Ref);
        await first.ExpectMsgAsync<TurnCompleted>();
        router.Tell(Turn(key, "two", stateless: true), second.Ref);

        Assert.Contains("received: \"two\"", ReplyText(await second.ExpectMsgAsync<TurnCompleted>()));
        await AwaitAssertAsync(() => Assert.Equal(0, Metrics.LiveSessions), TimeSpan.FromSeconds(3));
    }
}
