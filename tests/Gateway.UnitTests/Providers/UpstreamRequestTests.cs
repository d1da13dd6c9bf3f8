using Gateway.Agents;
using Gateway.Providers;
using OpenAI.Chat;

namespace Gateway.UnitTests.Providers;

public sealed class UpstreamRequestTests
{
    private static readonly AgentDefinition Agent = new("main", "fake/m1", BuiltInAgentSettings.Default);

    private static AgentTurn Turn(string message, params (ConversationRole Role, string Text)[] history) =>
        new(Agent, "agent:main:openai-user:ada", new AgentInput(message),
            history.Select(entry => new ConversationEntry(entry.Role, entry.Text)).ToList());

    [Fact]
    public void Without_a_context_window_the_whole_history_is_sent()
    {
        var turn = Turn("now", (ConversationRole.User, "q1"), (ConversationRole.Assistant, "a1"));

        var kept = UpstreamRequest.HistoryWithin(turn, new ProviderModel("m1"), systemChars: 0, maxOutput: null);

        Assert.Equal(["q1", "a1"], kept.Select(entry => entry.Text));
    }

    [Fact]
    public void The_oldest_turns_are_dropped_first_to_fit_the_context_window()
    {
        // Each 400-character message estimates to 100 tokens (+4 framing).
        var text = new string('x', 400);
        var turn = Turn("now",
            (ConversationRole.User, "old " + text), (ConversationRole.Assistant, text),
            (ConversationRole.User, "new " + text), (ConversationRole.Assistant, text));

        // 800 - 500 output - 1 for "now" leaves 299 tokens: room for the newest two messages (~209), not three (~313).
        var kept = UpstreamRequest.HistoryWithin(turn, new ProviderModel("m1", ContextWindow: 800), systemChars: 0, maxOutput: 500).ToList();

        Assert.Equal(2, kept.Count);
        Assert.StartsWith("new ", kept[0].Text);
    }

    [Fact]
    public void History_never_starts_with_an_answer_whose_question_was_dropped()
    {
        var text = new string('x', 400);
        var turn = Turn("now",
            (ConversationRole.User, "q " + text), (ConversationRole.Assistant, "a " + text), (ConversationRole.User, "q2"), (ConversationRole.Assistant, "a2"));

        // 149 tokens hold the newest three messages (~115) but not four (~220): the oldest question goes, so its answer goes too.
        var kept = UpstreamRequest.HistoryWithin(turn, new ProviderModel("m1", ContextWindow: 150), systemChars: 0, maxOutput: null).ToList();

        Assert.Equal(["q2", "a2"], kept.Select(entry => entry.Text));
    }

    [Fact]
    public void A_tool_exchange_is_sent_as_the_models_own_calls_and_their_results()
    {
        var exchange = new ToolExchange("weather?", [new ToolCallRecord("call_1", "get_weather", "{}")], [new ToolResult("call_1", "sunny")]);
        var turn = Turn("[flattened]") with { Input = new AgentInput("[flattened]", ToolExchange: exchange) };

        var (messages, _) = UpstreamRequest.Build(turn, new ProviderModel("m1"));

        Assert.IsType<UserChatMessage>(messages[0]);
        var assistant = Assert.IsType<AssistantChatMessage>(messages[1]);
        Assert.Equal("call_1", assistant.ToolCalls.Single().Id);
        var tool = Assert.IsType<ToolChatMessage>(messages[2]);
        Assert.Equal("call_1", tool.ToolCallId);
    }
}
