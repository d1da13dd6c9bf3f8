using Gateway.Agents;

namespace Gateway.Streams.Wire;

/// <summary>
/// One element of the answer in wire order (spec §8): role, content*, tool calls*, finish, usage?, done; or
/// role, content*, error, done. Produced only by <see cref="WireOrderStage"/>.
/// </summary>
public abstract record ChatStreamPart;

public sealed record RolePart : ChatStreamPart
{
    public static RolePart Instance { get; } = new();
}

public sealed record ContentPart(string Text) : ChatStreamPart;

public sealed record ToolCallPart(ToolCallDelta Delta) : ChatStreamPart;

public sealed record FinishPart(string FinishReason) : ChatStreamPart;

public sealed record UsagePart(TokenUsage Usage) : ChatStreamPart;

/// <summary>An in-band error. <paramref name="Cause"/> is for the server's log only.</summary>
public sealed record ErrorPart(ChatError Error, Exception? Cause) : ChatStreamPart;

public sealed record DonePart : ChatStreamPart
{
    public static DonePart Instance { get; } = new();
}

/// <summary>How a turn ended, for the session's memory and logs.</summary>
public sealed record TurnOutcome(string ReplyText, string? FinishReason, TokenUsage? Usage, ErrorPart? Error, bool Cancelled)
{
    public bool Succeeded => Error is null && !Cancelled && FinishReason is not null;
}
