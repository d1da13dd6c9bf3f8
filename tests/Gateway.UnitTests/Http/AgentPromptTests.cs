using System.Text.Json;
using Gateway.Agents;
using Gateway.Api.Http;

namespace Gateway.UnitTests.Http;

/// <summary>Spec §6: the agent's input, instructions and run options built from a request body.</summary>
public sealed class AgentPromptTests
{
    private static AgentInput? Build(string json)
    {
        using var document = JsonDocument.Parse(json);
        return AgentPrompt.Build(ChatRequestParser.Parse(document.RootElement));
    }

    [Fact]
    public void The_history_block_reads_exactly_as_the_spec_prints_it()
    {
        var input = Build("""
            {"messages":[
              {"role":"user","content":"Hi"},
              {"role":"assistant","content":"Hello!"},
              {"role":"tool","tool_call_id":"call_7","content":"{\"temp\":18}"},
              {"role":"tool","content":"done"},
              {"role":"user","content":"Thanks"}]}
            """);

        Assert.Equal(
            """
            [Chat messages since your last reply - for context]
            User: Hi
            Assistant: Hello!
            Tool:call_7: {"temp":18}
            Tool: done

            [Current message - respond to this]
            User: Thanks
            """.ReplaceLineEndings("\n"),
            input!.Message);
    }

    [Fact]
    public void System_and_developer_messages_joined_by_a_blank_line_are_extra_instructions()
    {
        var input = Build("""
            {"messages":[
              {"role":"system","content":" Be brief. "},
              {"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
              {"role":"system","content":""},
              {"role":"user","content":"Hello"}]}
            """);

        Assert.Equal("Hello", input!.Message);
        Assert.Equal("Be brief.\n\nAnswer in French.", input.ExtraSystemPrompt);
    }

    [Fact]
    public void Without_system_messages_there_are_no_extra_instructions()
    {
        Assert.Null(Build("""{"messages":[{"role":"user","content":"Hello"}]}""")!.ExtraSystemPrompt);
    }

    [Fact]
    public void Messages_after_the_current_one_are_dropped_system_ones_included()
    {
        var input = Build("""
            {"messages":[
              {"role":"user","content":"question"},
              {"role":"assistant","content":"half an answer"},
              {"role":"system","content":"late instruction"}]}
            """);

        Assert.Equal("question", input!.Message);
        Assert.Null(input.ExtraSystemPrompt);
    }

    [Theory]
    [InlineData("""{"messages":[]}""")]
    [InlineData("""{"messages":[{"role":"assistant","content":"only me"}]}""")]
    [InlineData("""{"messages":[{"role":"developer","content":"rules"}]}""")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""")]
    public void No_user_or_tool_message_with_text_means_no_input(string json)
    {
        Assert.Null(Build(json));
    }

    [Fact]
    public void The_sampling_values_response_format_and_tools_go_with_the_run()
    {
        var input = Build("""
            {"messages":[{"role":"user","content":"hi"}],
             "temperature":0.5,"top_p":0.9,"frequency_penalty":-1,"presence_penalty":1.5,"seed":42,
             "max_tokens":100,"max_completion_tokens":50,"stop":["END","STOP"],
             "response_format":{"type":"json_schema","json_schema":{"name":"answer","description":"d","schema":{"type":"object","properties":{}},"strict":true}},
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object"},"strict":false}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """)!;

        var sampling = input.Sampling!;
        Assert.Equal((0.5, 0.9, -1.0, 1.5, 42L, 50), (sampling.Temperature, sampling.TopP, sampling.FrequencyPenalty, sampling.PresencePenalty, sampling.Seed, sampling.MaxTokens));
        Assert.Equal(["END", "STOP"], sampling.Stop!);
        Assert.Equal(new ResponseFormat(ResponseFormat.JsonSchema, "answer", """{"type":"object","properties":{}}""", "d", true), sampling.ResponseFormat);
        Assert.Equal(new FunctionTool("get_weather", "Weather now", """{"type":"object"}""", false), Assert.Single(input.Tools!));
        Assert.Equal(ToolChoice.Function("get_weather"), input.ToolChoice);
    }

    [Theory]
    [InlineData("""{"max_tokens":7}""", 7)]
    [InlineData("""{"max_completion_tokens":9}""", 9)]
    [InlineData("""{"max_tokens":7,"max_completion_tokens":9}""", 9)]
    [InlineData("""{}""", null)]
    public void max_completion_tokens_wins_over_max_tokens(string caps, int? expected)
    {
        var body = caps.Insert(1, "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + (caps == "{}" ? "" : ","));

        Assert.Equal(expected, Build(body)!.Sampling!.MaxTokens);
    }

    [Theory]
    [InlineData("""{"type":"text"}""", "text")]
    [InlineData("""{"type":"json_object"}""", "json_object")]
    public void Simple_response_formats_pass_as_their_type(string format, string type)
    {
        var input = Build($$$"""{"messages":[{"role":"user","content":"hi"}],"response_format":{{{format}}}}""")!;

        Assert.Equal(new ResponseFormat(type), input.Sampling!.ResponseFormat);
    }

    [Theory]
    [InlineData("\"auto\"", "auto")]
    [InlineData("\"none\"", "none")]
    [InlineData("\"required\"", "required")]
    public void Tool_choice_modes_pass_as_they_are(string choice, string mode)
    {
        var input = Build($$$"""
            {"messages":[{"role":"user","content":"hi"}],"tool_choice":{{{choice}}},
             "tools":[{"type":"function","function":{"name":"f"}}]}
            """)!;

        Assert.Equal(new ToolChoice(mode), input.ToolChoice);
        Assert.Equal(new FunctionTool("f"), Assert.Single(input.Tools!));
    }

    [Fact]
    public void Nothing_asked_means_nothing_passed()
    {
        var input = Build("""{"messages":[{"role":"user","content":"hi"}]}""")!;

        Assert.Equal(SamplingOptions.None, input.Sampling);
        Assert.Null(input.Tools);
        Assert.Null(input.ToolChoice);
    }
}
