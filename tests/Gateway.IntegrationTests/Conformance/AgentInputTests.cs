using System.Net;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Spec §6, building the agent's input. The built-in agent quotes the input it received, so each
/// case reads the input back from its reply.
/// </summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class AgentInputTests(ConformanceGateway gateway)
{
    public static TheoryData<string, string, string> Inputs => new()
    {
        {
            "with no earlier messages the input is the current message's text as is",
            """[{"role":"user","content":"  What is 2+2?\n"}]""",
            "What is 2+2?"
        },
        {
            "earlier messages go into the history block above the current one",
            """
            [{"role":"system","content":"Be brief."},
             {"role":"user","content":"Hi"},
             {"role":"assistant","content":"Hello! How can I help?"},
             {"role":"user","content":"What is 2+2?"}]
            """,
            "[Chat messages since your last reply - for context]\nUser: Hi\nAssistant: Hello! How can I help?\n\n[Current message - respond to this]\nUser: What is 2+2?"
        },
        {
            "a tool message with an id reads Tool:<id>:",
            """
            [{"role":"user","content":"Weather in Paris?"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
             {"role":"tool","tool_call_id":"call_1","content":"18C, sunny"}]
            """,
            "[Chat messages since your last reply - for context]\nUser: Weather in Paris?\n\n[Current message - respond to this]\nTool:call_1: 18C, sunny"
        },
        {
            "a tool message without an id reads Tool:",
            """[{"role":"user","content":"Run it"},{"role":"tool","content":"done"}]""",
            "[Chat messages since your last reply - for context]\nUser: Run it\n\n[Current message - respond to this]\nTool: done"
        },
        {
            "tool messages in the history keep their prefixes",
            """
            [{"role":"user","content":"a"},{"role":"tool","tool_call_id":"c9","content":"b"},
             {"role":"tool","content":"c"},{"role":"assistant","content":"d"},{"role":"user","content":"e"}]
            """,
            "[Chat messages since your last reply - for context]\nUser: a\nTool:c9: b\nTool: c\nAssistant: d\n\n[Current message - respond to this]\nUser: e"
        },
        {
            "a lone tool message is the input as is",
            """[{"role":"tool","tool_call_id":"call_2","content":"42"}]""",
            "42"
        },
        {
            "the last user message is current and messages after it are dropped",
            """[{"role":"user","content":"first"},{"role":"user","content":"second"},{"role":"assistant","content":"trailing"}]""",
            "[Chat messages since your last reply - for context]\nUser: first\n\n[Current message - respond to this]\nUser: second"
        },
        {
            "system and developer messages are instructions, not history",
            """[{"role":"developer","content":"Use French."},{"role":"system","content":"Be brief."},{"role":"user","content":"Bonjour"}]""",
            "Bonjour"
        },
        {
            "text and input_text parts are joined by newlines and trimmed; other parts add no text",
            """
            [{"role":"user","content":[{"type":"text","text":"  Look at this:"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}},
                                       {"type":"input_text","text":"what is it?  "}]}]
            """,
            "Look at this:\nwhat is it?"
        },
        {
            "messages with no text are left out of the history",
            """[{"role":"user","content":""},{"role":"assistant","content":[]},{"role":"user","content":"  "},{"role":"user","content":"real"}]""",
            "real"
        },
        {
            "roles are matched case-insensitively and unknown roles are left out",
            """[{"role":"USER","content":"a"},{"role":"narrator","content":"ignored"},{"role":"Assistant","content":"b"},{"role":"user","content":"c"}]""",
            "[Chat messages since your last reply - for context]\nUser: a\nAssistant: b\n\n[Current message - respond to this]\nUser: c"
        },
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task The_agent_receives_the_input_the_spec_prescribes(string rule, string messages, string input)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, $$"""{"model":"openclaw","messages":{{messages}}}""");

        Assert.True(Http.EchoOf(input) == await Http.ReplyAsync(response), rule);
    }

    public static TheoryData<string> NoUsableMessage =>
    [
        """{"messages":[]}""",
        """{}""",
        """{"messages":[{"role":"system","content":"Be brief."}]}""",
        """{"messages":[{"role":"assistant","content":"Hello"}]}""",
        """{"messages":[{"role":"user","content":"   "}]}""",
        """{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}""",
        """{"messages":[{"content":"no role"}]}""",
    ];

    [Theory]
    [MemberData(nameof(NoUsableMessage))]
    public async Task No_usable_message_is_400_and_no_run(string body)
    {
        using var client = gateway.Client();
        var runsBefore = gateway.Server.Metrics.RunsStarted;

        using var response = await Http.PostAsync(client, body);

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, "Missing user message in `messages`.", "invalid_request_error");
        Assert.Equal(runsBefore, gateway.Server.Metrics.RunsStarted);
    }
}
