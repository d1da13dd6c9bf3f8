using Akka.Configuration;
using Gateway.Actors;
using Gateway.Actors.Sessions;

namespace Gateway.UnitTests.Configuration;

/// <summary><c>gateway.sessions</c> in <c>akka.hocon</c>, read over the defaults.</summary>
public sealed class SessionHoconTests
{
    [Fact]
    public void Stateless_sessions_default_to_one_per_core_and_at_least_two()
    {
        var settings = GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString("gateway.sessions { max-queued-turns = 8 }"));

        Assert.Equal(Math.Max(2, Environment.ProcessorCount), settings.StatelessSessions);
        Assert.Equal(8, settings.MaxQueuedTurns);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Stateless_sessions_are_read_from_the_config(int count)
    {
        var settings = GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString($"gateway.sessions.stateless-sessions = {count}"));

        Assert.Equal(count, settings.StatelessSessions);
    }

    [Fact]
    public void A_negative_number_of_stateless_sessions_is_refused_with_the_key_named()
    {
        var error = Assert.Throws<ConfigurationException>(() =>
            GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString("gateway.sessions.stateless-sessions = -1")));

        Assert.Contains("gateway.sessions.stateless-sessions", error.Message);
    }

    [Fact]
    public void Lanes_per_graph_defaults_to_eight_and_is_read_from_the_config()
    {
        Assert.Equal(8, GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString("gateway.sessions { max-queued-turns = 8 }")).LanesPerGraph);
        Assert.Equal(1, GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString("gateway.sessions.lanes-per-graph = 1")).LanesPerGraph);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void Lanes_per_graph_below_one_is_refused_with_the_key_named(int count)
    {
        var error = Assert.Throws<ConfigurationException>(() =>
            GatewayActorsSetup.FromHocon(ConfigurationFactory.ParseString($"gateway.sessions.lanes-per-graph = {count}")));

        Assert.Contains("gateway.sessions.lanes-per-graph", error.Message);
    }
}
