namespace Gateway.UnitTests;

internal static class PatientTestKit
{
    /// <summary>
    /// CI machines are shared and run both test projects at once on two cores: a message that takes a few seconds
    /// to arrive there is slow, not missing. Waits for something that must happen get 10 s instead of TestKit's 3 s;
    /// waits for something that must not happen keep their own short, explicit durations.
    /// </summary>
    public const string Config = "akka.test.single-expect-default = 10s";
}
