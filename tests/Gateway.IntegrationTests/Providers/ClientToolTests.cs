using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Gateway.IntegrationTests.Infrastructure;
using OpenAI;
using OpenAI.Chat;

namespace Gateway.IntegrationTests.Providers;

/// <summary>Client tools through the gateway to a real OpenAI-compatible upstream, with the official SDK.</summary>
public sealed class ClientToolTests : IAsyncLifetime
{
    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool(
        "get_weather", "The weather in a city",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));

    private FakeUpstream _upstream = null!;
    private GatewayServer _gateway = null!;
    private string _workspace = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _workspace = Directory.CreateTempSubdirectory("gateway-workspace-").FullName;
        _gateway = await GatewayServer.StartAsync(UpstreamProviderTests.Config(_upstream.BaseUrl, _workspace), extraArgs: ["--FAKE_API_KEY=sk-fake"]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
        Directory.Delete(_workspace, recursive: true);
    }

    [Fact]
    public async Task A_tool_call_round_trip_works_with_the_official_OpenAI_SDK()
    {
        _upstream.Enqueue(
            new FakeReply(ToolCalls: [("call_1", "get_weather", """{"city":"Paris"}""")]),
            FakeReply.Text("It is ", "sunny in Paris."));
        var chat = new ChatClient("openclaw", new ApiKeyCredential(GatewayServer.Token),
            new OpenAIClientOptions { Endpoint = new Uri(_gateway.BaseAddress, "/v1") });
        var options = new ChatCompletionOptions { Tools = { Weather } };
        List<ChatMessage> conversation = [new UserChatMessage("What is the weather in Paris?")];

        ChatCompletion first = await chat.CompleteChatAsync(conversation, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("call_1", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Paris"}""", call.FunctionArguments.ToString());
        var offered = _upstream.Requests.Single()["tools"]!.AsArray().Single()!;
        Assert.Equal("get_weather", offered["function"]!["name"]!.GetValue<string>());

        conversation.Add(new AssistantChatMessage(first));
        conversation.Add(new ToolChatMessage(call.Id, "sunny, 24°C"));
        ChatCompletion second = await chat.CompleteChatAsync(conversation, options);

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("It is sunny in Paris.", second.Content.Single().Text);
        // The model gets its own call back, then the result, as real tool messages.
        var continued = _upstream.Requests.Last()["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "tool"], continued.Select(message => message!["role"]!.GetValue<string>()));
        Assert.Equal("What is the weather in Paris?", TextOf(continued[0]!["content"]!));
        Assert.Equal("call_1", continued[1]!["tool_calls"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("call_1", continued[2]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("sunny, 24°C", TextOf(continued[2]!["content"]!));
    }

    [Fact]
    public async Task Streamed_tool_calls_arrive_as_OpenAI_sends_them_and_finish_with_tool_calls()
    {
        _upstream.Enqueue(new FakeReply(ToolCalls: [("call_9", "get_weather", """{"city":"Oslo"}""")]));
        using var client = _gateway.CreateClient();

        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "openclaw",
            stream = true,
            messages = new[] { new { role = "user", content = "weather in Oslo?" } },
            tools = new[] { new { type = "function", function = new { name = "get_weather", parameters = new { type = "object" } } } },
        });
        var events = (await response.Content.ReadAsStringAsync())
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(block => block["data: ".Length..]).ToList();

        var deltas = events.SkipLast(1).Select(data => JsonNode.Parse(data)!["choices"]!.AsArray()).Where(choices => choices.Count > 0)
            .Select(choices => choices[0]!).ToList();
        var toolDeltas = deltas.Where(choice => choice["delta"]!["tool_calls"] is not null).Select(choice => choice["delta"]!["tool_calls"]![0]!).ToList();
        Assert.Equal("call_9", toolDeltas[0]["id"]!.GetValue<string>());
        Assert.Equal("function", toolDeltas[0]["type"]!.GetValue<string>());
        Assert.Equal("get_weather", toolDeltas[0]["function"]!["name"]!.GetValue<string>());
        Assert.Equal("""{"city":"Oslo"}""", string.Concat(toolDeltas.Select(delta => delta["function"]!["arguments"]?.GetValue<string>())));
        Assert.All(toolDeltas, delta => Assert.Equal(0, delta["index"]!.GetValue<int>()));
        Assert.Equal("tool_calls", deltas.Last()["finish_reason"]!.GetValue<string>());
        Assert.Equal("[DONE]", events[^1]);
    }

    private static string TextOf(JsonNode content) => content is JsonArray parts
        ? string.Concat(parts.Select(part => part!["text"]!.GetValue<string>()))
        : content.GetValue<string>();
}
