using System.Text;
using Gateway.Agents;

namespace Gateway.Api.Http;

/// <summary>
/// Builds the agent's input from the request's messages (spec §6): system and developer text become
/// extra instructions; the last user or tool message is the current one (anything after it is
/// dropped); earlier messages go into a context block above it.
/// </summary>
public static class AgentPrompt
{
    public const string MissingUserMessage = "Missing user message in `messages`.";
    public const string HistoryHeader = "[Chat messages since your last reply - for context]";
    public const string CurrentHeader = "[Current message - respond to this]";

    /// <returns>The input, with the request's sampling values and tools; null when there is no usable message.</returns>
    public static AgentInput? Build(ChatRequest request)
    {
        var messages = request.Messages;
        var currentIndex = -1;
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role is "user" or "tool" && messages[i].Text.Length > 0)
            {
                currentIndex = i;
                break;
            }
        }
        if (currentIndex < 0) return null;

        var instructions = new List<string>();
        var history = new StringBuilder();
        for (var i = 0; i < currentIndex; i++)
        {
            var earlier = messages[i];
            if (earlier.Text.Length == 0) continue;
            if (earlier.Role is "system" or "developer") instructions.Add(earlier.Text);
            else if (Line(earlier) is { } line) history.Append(line).Append('\n');
        }
        var current = messages[currentIndex];
        var message = history.Length == 0
            ? current.Text
            : $"{HistoryHeader}\n{history}\n{CurrentHeader}\n{Line(current)}";
        var extra = instructions.Count == 0 ? null : string.Join("\n\n", instructions);
        return new AgentInput(message, extra, request.Sampling, request.Tools, request.ToolChoice, ToolExchangeEndingAt(request, currentIndex));
    }

    /// <summary>
    /// When the current message is a tool result that answers an assistant message's tool calls (with
    /// only tool results between them), the exchange a model needs to continue: what led to the calls,
    /// the calls, and the results.
    /// </summary>
    private static ToolExchange? ToolExchangeEndingAt(ChatRequest request, int currentIndex)
    {
        var messages = request.Messages;
        if (messages[currentIndex].Role != "tool") return null;
        var callsIndex = currentIndex - 1;
        while (callsIndex >= 0 && messages[callsIndex].Role == "tool") callsIndex--;
        if (callsIndex < 0 || messages[callsIndex] is not { Role: "assistant", ToolCalls: { Count: > 0 } calls }) return null;
        var results = new List<ToolResult>();
        for (var i = callsIndex + 1; i <= currentIndex; i++) results.Add(new ToolResult(messages[i].ToolCallId, messages[i].Text));
        var lead = Build(request with { Messages = messages.Take(callsIndex).ToList() });
        return new ToolExchange(lead?.Message, calls, results);
    }

    private static string? Line(ChatMessageIn message) => message.Role switch
    {
        "user" => $"User: {message.Text}",
        "assistant" => $"Assistant: {message.Text}",
        "tool" when message.ToolCallId is { } id => $"Tool:{id}: {message.Text}",
        "tool" => $"Tool: {message.Text}",
        _ => null,
    };
}
