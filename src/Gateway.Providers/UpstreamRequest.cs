using Gateway.Agents;

using OpenAI.Chat;

namespace Gateway.Providers;

/// <summary>Builds the upstream request: the agent's instructions, the session's memory, the current input.</summary>
internal static class UpstreamRequest
{
    public static (List<ChatMessage> Messages, ChatCompletionOptions Options) Build(AgentTurn turn, ProviderModel model)
    {
        var sampling = turn.Input.Sampling ?? SamplingOptions.None;
        var maxOutput = sampling.MaxTokens ?? model.MaxTokens;
        var system = string.Join("\n\n", new[] { turn.Instructions, turn.Input.ExtraSystemPrompt }.Where(text => !string.IsNullOrWhiteSpace(text)));

        var messages = new List<ChatMessage>();
        if (system.Length > 0) messages.Add(new SystemChatMessage(system));
        foreach (var entry in HistoryWithin(turn, model, system.Length, maxOutput))
        {
            messages.Add(entry.Role == ConversationRole.User ? new UserChatMessage(entry.Text) : new AssistantChatMessage(entry.Text));
        }
        if (turn.Input.ToolExchange is { } exchange)
        {
            // The model called client tools; it continues from its own calls and their results.
            if (exchange.LeadMessage is { } lead) messages.Add(new UserChatMessage(lead));
            messages.Add(new AssistantChatMessage(exchange.Calls
                .Select(call => ChatToolCall.CreateFunctionToolCall(call.Id, call.Name, BinaryData.FromString(call.Arguments)))
                .ToList()));
            foreach (var result in exchange.Results)
                messages.Add(new ToolChatMessage(result.ToolCallId ?? exchange.Calls[0].Id, result.Text));
        }
        else
        {
            messages.Add(new UserChatMessage(turn.Input.Message));
        }

        var options = new ChatCompletionOptions
        {
            Temperature = (float?)sampling.Temperature,
            TopP = (float?)sampling.TopP,
            FrequencyPenalty = (float?)sampling.FrequencyPenalty,
            PresencePenalty = (float?)sampling.PresencePenalty,
            MaxOutputTokenCount = maxOutput,
        };
#pragma warning disable OPENAI001 // Seed is marked experimental by the SDK; OpenAI-compatible servers accept it.
        options.Seed = sampling.Seed;
#pragma warning restore OPENAI001
#pragma warning disable SCME0001 // JsonPatch is experimental; the SDK has no other way to ask for usage in a stream.
        // Without it, OpenAI-compatible servers send no usage with a streamed answer.
        options.Patch.Set("$.stream_options.include_usage"u8, true);
#pragma warning restore SCME0001
        foreach (var stop in sampling.Stop ?? []) options.StopSequences.Add(stop);
        options.ResponseFormat = sampling.ResponseFormat switch
        {
            { Type: ResponseFormat.JsonObject } => ChatResponseFormat.CreateJsonObjectFormat(),
            { Type: ResponseFormat.JsonSchema, SchemaName: { } name } format => ChatResponseFormat.CreateJsonSchemaFormat(
                name, BinaryData.FromString(format.SchemaJson ?? "{}"), format.Description, format.Strict),
            _ => null,
        };
        foreach (var tool in turn.Input.Tools ?? [])
        {
            options.Tools.Add(ChatTool.CreateFunctionTool(tool.Name, tool.Description,
                tool.ParametersJson is { } parameters ? BinaryData.FromString(parameters) : null, tool.Strict));
        }
        options.ToolChoice = turn.Input.ToolChoice switch
        {
            { Mode: ToolChoice.NoneMode } => ChatToolChoice.CreateNoneChoice(),
            { Mode: ToolChoice.RequiredMode } => ChatToolChoice.CreateRequiredChoice(),
            { Mode: ToolChoice.FunctionMode, FunctionName: { } function } => ChatToolChoice.CreateFunctionChoice(function),
            { Mode: ToolChoice.AutoMode } => ChatToolChoice.CreateAutoChoice(),
            _ => null,
        };
        return (messages, options);
    }

    /// <summary>
    /// The newest turns of the session that fit the model's context window, counted with the same
    /// estimate as usage (four characters a token), after the system text, the current input and the
    /// output cap. Whole user/assistant pairs are dropped, oldest first.
    /// </summary>
    public static IEnumerable<ConversationEntry> HistoryWithin(AgentTurn turn, ProviderModel model, int systemChars, int? maxOutput)
    {
        if (model.ContextWindow is not { } window) return turn.History;
        var budget = window - (maxOutput ?? 0) - TokenEstimator.Estimate(systemChars) - TokenEstimator.Estimate(turn.Input.Message);
        var kept = 0;
        var used = 0;
        for (var i = turn.History.Count - 1; i >= 0; i--)
        {
            used += TokenEstimator.Estimate(turn.History[i].Text) + 4; // a few tokens of per-message framing
            if (used > budget) break;
            kept++;
        }
        // Never start the history with an assistant reply whose question was dropped.
        var start = turn.History.Count - kept;
        if (start < turn.History.Count && turn.History[start].Role == ConversationRole.Assistant) start++;
        return turn.History.Skip(start);
    }
}
