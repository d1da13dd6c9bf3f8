using Gateway.Agents;
using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

// The markers that separate one run from the next on a lane. A lane carries one run at a time, so
// the events in between belong to the run last opened; they need no tag of their own.

/// <summary>From the agent end: a run starts; its events follow.</summary>
internal sealed record RunStarting(AnswerRun Run) : AgentEvent;

/// <summary>From the agent end: the agent threw, or the run was aborted (timeout, crash).</summary>
internal sealed record AgentFault(Exception Cause) : AgentEvent;

/// <summary>From the agent end: the run was cancelled (<see cref="AnswerRun.Cancel"/>) and the agent stopped.</summary>
internal sealed record RunCancelled : AgentEvent
{
    public static RunCancelled Instance { get; } = new();
}

/// <summary>To the answer end: the parts that follow belong to this run.</summary>
internal sealed record RunOpened(AnswerRun Run) : ChatStreamPart;

/// <summary>To the answer end: the run was cancelled before its done part; the lane is free after it.</summary>
internal sealed record RunCancelledPart : ChatStreamPart
{
    public static RunCancelledPart Instance { get; } = new();
}
