namespace Gateway.Agents;

/// <summary>A configured agent: its id, its model (null: the built-in agent) and built-in settings.</summary>
/// <param name="Model">The primary model as <c>provider/model</c>; null for the built-in agent.</param>
/// <param name="Fallbacks">Models tried in order when the primary fails before its first token.</param>
public sealed record AgentDefinition(string Id, string? Model, BuiltInAgentSettings BuiltIn, string? Workspace = null,
    IReadOnlyList<string>? Fallbacks = null);

/// <summary>How the built-in agent answers: in how many pieces, and how long it waits before each.</summary>
/// <param name="ReplyChars">Pads the reply (repeating it) to this many characters, made piece by piece
/// as they are pulled, so a benchmark can ask for a long answer without it being held in memory.</param>
public sealed record BuiltInAgentSettings(TimeSpan PieceDelay, int? Pieces, long? ReplyChars = null)
{
    public static BuiltInAgentSettings Default { get; } = new(TimeSpan.Zero, null);
}

/// <summary>Sampling values a client asked for; the model layer passes them on where it can.</summary>
/// <param name="ResponseFormat">The answer's format (OpenAI's <c>response_format</c>); null: plain text.</param>
public sealed record SamplingOptions(
    double? Temperature = null,
    double? TopP = null,
    double? FrequencyPenalty = null,
    double? PresencePenalty = null,
    long? Seed = null,
    int? MaxTokens = null,
    IReadOnlyList<string>? Stop = null,
    ResponseFormat? ResponseFormat = null)
{
    public static SamplingOptions None { get; } = new();
}

/// <summary>
/// OpenAI's <c>response_format</c>: <c>text</c>, <c>json_object</c> (any JSON object), or
/// <c>json_schema</c> (JSON matching <paramref name="SchemaJson"/>, named <paramref name="SchemaName"/>).
/// </summary>
/// <param name="SchemaJson">The JSON Schema as the client sent it (raw JSON text); json_schema only.</param>
public sealed record ResponseFormat(string Type, string? SchemaName = null, string? SchemaJson = null,
    string? Description = null, bool? Strict = null)
{
    public const string Text = "text";
    public const string JsonObject = "json_object";
    public const string JsonSchema = "json_schema";
}

/// <summary>A function the client offers the model (an OpenAI function tool); the model may answer with a call to it.</summary>
/// <param name="ParametersJson">The parameters' JSON Schema as the client sent it (raw JSON text), if any.</param>
public sealed record FunctionTool(string Name, string? Description = null, string? ParametersJson = null, bool? Strict = null);

/// <summary>OpenAI's <c>tool_choice</c>: <c>auto</c>, <c>none</c>, <c>required</c>, or one pinned function.</summary>
public sealed record ToolChoice(string Mode, string? FunctionName = null)
{
    public const string AutoMode = "auto";
    public const string NoneMode = "none";
    public const string RequiredMode = "required";
    public const string FunctionMode = "function";

    public static ToolChoice Auto { get; } = new(AutoMode);
    public static ToolChoice None { get; } = new(NoneMode);
    public static ToolChoice Required { get; } = new(RequiredMode);

    public static ToolChoice Function(string name) => new(FunctionMode, name);
}

/// <summary>A call of a client tool the model made in an earlier answer.</summary>
public sealed record ToolCallRecord(string Id, string Name, string Arguments);

/// <summary>A client tool's result, answering the call <paramref name="ToolCallId"/>.</summary>
public sealed record ToolResult(string? ToolCallId, string Text);

/// <summary>
/// The request ended with the results of client tools the model called: the message that led to the
/// calls (flattened like any input), the calls, and their results. A model gets these as real
/// assistant tool-call and tool messages, so it can continue where it left off.
/// </summary>
public sealed record ToolExchange(string? LeadMessage, IReadOnlyList<ToolCallRecord> Calls, IReadOnlyList<ToolResult> Results);

/// <summary>What one turn gives the agent: the current message, extra system text, and sampling values.</summary>
/// <param name="Tools">Functions the client offers (client tools); null or empty: none.</param>
/// <param name="ToolChoice">How the model may use <paramref name="Tools"/>; null: the model's default.</param>
/// <param name="ToolExchange">Set when the request answers the model's tool calls (see <see cref="Agents.ToolExchange"/>).</param>
public sealed record AgentInput(string Message, string? ExtraSystemPrompt = null, SamplingOptions? Sampling = null,
    IReadOnlyList<FunctionTool>? Tools = null, ToolChoice? ToolChoice = null, ToolExchange? ToolExchange = null);

/// <summary>One remembered message of a session's conversation.</summary>
public sealed record ConversationEntry(ConversationRole Role, string Text);

public enum ConversationRole { User, Assistant }

/// <summary>Everything an agent needs for one turn.</summary>
/// <param name="Instructions">The agent's own system prompt (its workspace's AGENTS.md and SOUL.md), if any.</param>
public sealed record AgentTurn(AgentDefinition Agent, string SessionKey, AgentInput Input, IReadOnlyList<ConversationEntry> History,
    string? Instructions = null)
{
    /// <summary>Characters of everything the model reads this turn, for usage estimates when it reports none.</summary>
    public int PromptCharacters =>
        Input.Message.Length + (Input.ExtraSystemPrompt?.Length ?? 0) + (Instructions?.Length ?? 0) + History.Sum(entry => entry.Text.Length);
}

/// <summary>Runs an agent turn as a stream of events. The stream is pulled, so it must not produce ahead of demand.</summary>
public interface IAgentRuntime
{
    /// <summary>
    /// The run's events, read one at a time as the answer's reader pulls them. Stopping early cancels
    /// the enumerator's token and disposes it; an agent should end its upstream work on either.
    /// </summary>
    IAsyncEnumerable<AgentEvent> Run(AgentTurn turn);
}

/// <summary>Picks the runtime that serves an agent (the built-in agent when it has no model).</summary>
public interface IAgentRuntimeResolver
{
    IAgentRuntime Resolve(AgentDefinition agent);
}
