using Akka.Configuration;
using Gateway.Actors;
using Gateway.Api.Hosting;

namespace Gateway.UnitTests;

internal static class PatientTestKit
{
    /// <summary>
    /// The gateway's own HOCON (akka.hocon, and the mailboxes the actors need) under the test kit's settings.
    /// CI machines are shared and run both test projects at once on two cores: a message that takes a few seconds
    /// to arrive there is slow, not missing. Waits for something that must happen get 10 s instead of TestKit's 3 s;
    /// waits for something that must not happen keep their own short, explicit durations.
    /// </summary>
    public static Config Config { get; } = ConfigurationFactory.ParseString("akka.test.single-expect-default = 10s")
        .WithFallback(ConfigurationFactory.ParseString(File.ReadAllText(GatewayHost.HoconPath)))
        .WithFallback(ConfigurationFactory.ParseString(LeanMailbox.Hocon));
}
