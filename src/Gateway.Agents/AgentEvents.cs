namespace Gateway.Agents;

/// <summary>What an agent run emits, in order: text deltas (and usage) then one end or one error.</summary>
public abstract record AgentEvent;

/// <summary>A piece of the assistant's reply, as the agent produced it.</summary>
public sealed record TextDelta(string Text) : AgentEvent;

/// <summary>
/// A piece of a client tool call, as OpenAI streams them: the first piece of a call carries its
/// <paramref name="Id"/> and function <paramref name="Name"/>, later pieces more of its JSON arguments.
/// </summary>
/// <param name="Index">Which call of the answer this piece belongs to (0, 1, …).</param>
public sealed record ToolCallDelta(int Index, string? Id, string? Name, string? ArgumentsDelta) : AgentEvent;

/// <summary>Token usage for the run; the last one seen wins.</summary>
public sealed record UsageReport(TokenUsage Usage) : AgentEvent;

/// <summary>The run ended normally. Anything after it is ignored.</summary>
public sealed record RunEnded(string FinishReason = FinishReasons.Stop) : AgentEvent;

/// <summary>The run ended with an error that the client may see (already safe to expose).</summary>
public sealed record RunFailed(ChatError Error) : AgentEvent;

public static class FinishReasons
{
    public const string Stop = "stop";
    public const string ToolCalls = "tool_calls";
    public const string Length = "length";
}

public sealed record TokenUsage(int PromptTokens, int CompletionTokens)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>An error as OpenAI clients read it: <c>{"error":{"message","type"[,"code"]}}</c>.</summary>
/// <param name="HttpStatus">The status a not-yet-started answer gets for it (not part of the JSON).</param>
/// <param name="RetryAfterSeconds">For rate limits: the <c>Retry-After</c> to send with that status.</param>
public sealed record ChatError(string Message, string Type, string? Code = null, int HttpStatus = 500, int? RetryAfterSeconds = null)
{
    /// <summary>What a failed run shows the client: internals are logged, never sent.</summary>
    public static ChatError Internal { get; } = new("internal error", "api_error");
}

/// <summary>
/// Counts tokens when a model reports none. A heuristic, not a tokenizer: about four characters of
/// English per token (OpenAI's own rule of thumb), rounded up, at least one for non-empty text.
/// </summary>
public static class TokenEstimator
{
    public static int Estimate(int characters) => characters <= 0 ? 0 : (characters + 3) / 4;

    /// <summary>For answers longer than an int of characters (a padded benchmark answer).</summary>
    public static long Estimate(long characters) => characters <= 0 ? 0 : (characters + 3) / 4;

    public static int Estimate(string? text) => Estimate(text?.Length ?? 0);
}

/// <summary>A run failure whose error is safe to show the client (message, type and status chosen by us).</summary>
public class AgentRunException(ChatError error, Exception? inner = null) : Exception(error.Message, inner)
{
    public ChatError Error { get; } = error;
}
