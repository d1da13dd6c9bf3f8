using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// What a run's answer waits for before it ends: its session records the turn (a durable session writes it to
/// its journal) between the agent's last word and the answer's end, so a client that has heard the end knows
/// the turn is kept. Called once per run that succeeded, on the lane's thread; it must not block, and it must
/// complete (with an error when the turn could not be recorded: the answer then ends with that error).
/// </summary>
public interface IRunCommit
{
    /// <summary>Records the turn; completes with null once it is kept, or with the error the answer ends with instead.</summary>
    ValueTask<ChatError?> CommitAsync(TurnOutcome outcome);
}
