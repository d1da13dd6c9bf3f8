using System.ClientModel;
using System.Text;
using Gateway.IntegrationTests.Infrastructure;
using OpenAI;
using OpenAI.Chat;

namespace Gateway.IntegrationTests;

/// <summary>The official OpenAI .NET SDK, pointed at the gateway, works unchanged.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class OpenAiSdkTests(DefaultGatewayFixture fixture)
{
    private ChatClient Client(string model) => new(model, new ApiKeyCredential(GatewayServer.Token),
        new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "/v1") });

    [Fact]
    public async Task Sdk_completes_a_chat_with_the_built_in_agent()
    {
        var client = Client("openclaw:main");

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("hello from the SDK")]);

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatApi.FreshReply("hello from the SDK"), Assert.Single(completion.Content).Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.StartsWith("chatcmpl_", completion.Id);
        Assert.Equal("openclaw:main", completion.Model);
        Assert.NotNull(completion.Usage);
        Assert.True(completion.Usage.InputTokenCount > 0, "prompt_tokens > 0");
        Assert.True(completion.Usage.OutputTokenCount > 0, "completion_tokens > 0");
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Sdk_streamed_deltas_join_to_the_non_streamed_reply()
    {
        var client = Client("openclaw");
        ChatMessage[] messages = [new UserChatMessage("stream this, please")];
        ChatCompletion whole = await client.CompleteChatAsync(messages);

        var text = new StringBuilder();
        var ids = new HashSet<string>();
        var finishReasons = new List<ChatFinishReason>();
        ChatTokenUsage? usage = null;
        var updates = 0;
        // The SDK sends stream_options.include_usage itself (it does not expose the option), so usage arrives last.
        await foreach (var update in client.CompleteChatStreamingAsync(messages))
        {
            updates++;
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            if (update.FinishReason is { } reason) finishReasons.Add(reason);
            if (update.Usage is not null) usage = update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(ChatApi.FreshReply("stream this, please"), text.ToString());
        Assert.True(updates > 3, $"the reply came in pieces ({updates} updates)");
        Assert.StartsWith("chatcmpl_", Assert.Single(ids));
        Assert.Equal(ChatFinishReason.Stop, Assert.Single(finishReasons));
        Assert.NotNull(usage);
        Assert.True(usage.InputTokenCount > 0 && usage.OutputTokenCount > 0, "usage is not zero");
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
    }

    [Fact]
    public async Task Sdk_end_user_id_keeps_one_session_across_calls()
    {
        var client = Client("openclaw");
        var options = new ChatCompletionOptions { EndUserId = $"sdk-{Guid.NewGuid():N}" };

        await client.CompleteChatAsync([new UserChatMessage("remember me")], options);
        ChatCompletion second = await client.CompleteChatAsync([new UserChatMessage("do you?")], options);

        Assert.Contains(ChatApi.OneEarlierTurn("remember me"), second.Content[0].Text);
    }
}
