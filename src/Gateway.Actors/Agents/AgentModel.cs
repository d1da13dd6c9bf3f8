using Gateway.Streams;

namespace Gateway.Actors.Agents;

/// <summary>A configured agent: its id, its model (null: the built-in agent) and built-in settings.</summary>
public sealed record AgentDefinition(string Id, string? Model, BuiltInAgentSettings BuiltIn, string? Workspace = null);

/// <summary>How the built-in agent answers: in how many pieces, and how long it waits before each.</summary>
/// <param name="ReplyChars">Pads the reply (repeating it) to this many characters, made piece by piece
/// as they are pulled, so a benchmark can ask for a long answer without it being held in memory.</param>
public sealed record BuiltInAgentSettings(TimeSpan PieceDelay, int? Pieces, long? ReplyChars = null)
{
    public static BuiltInAgentSettings Default { get; } = new(TimeSpan.Zero, null);
}

/// <summary>Sampling values a client asked for; the model layer passes them on where it can.</summary>
public sealed record SamplingOptions(
    double? Temperature = null,
    double? TopP = null,
    double? FrequencyPenalty = null,
    double? PresencePenalty = null,
    long? Seed = null,
    int? MaxTokens = null,
    IReadOnlyList<string>? Stop = null)
{
    public static SamplingOptions None { get; } = new();
}

/// <summary>What one turn gives the agent: the current message, extra system text, and sampling values.</summary>
public sealed record AgentInput(string Message, string? ExtraSystemPrompt = null, SamplingOptions? Sampling = null);

/// <summary>One remembered message of a session's conversation.</summary>
public sealed record ConversationEntry(ConversationRole Role, string Text);

public enum ConversationRole { User, Assistant }

/// <summary>Everything an agent needs for one turn.</summary>
public sealed record AgentTurn(AgentDefinition Agent, string SessionKey, AgentInput Input, IReadOnlyList<ConversationEntry> History);

/// <summary>Runs an agent turn as a stream of events. The stream is pulled, so it must not produce ahead of demand.</summary>
public interface IAgentRuntime
{
    Akka.Streams.Dsl.Source<AgentEvent, Akka.NotUsed> Run(AgentTurn turn);
}

/// <summary>Picks the runtime that serves an agent (the built-in agent when it has no model).</summary>
public interface IAgentRuntimeResolver
{
    IAgentRuntime Resolve(AgentDefinition agent);
}
