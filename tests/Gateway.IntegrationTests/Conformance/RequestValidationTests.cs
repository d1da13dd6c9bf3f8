using System.Net;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Spec §6: fields with the wrong type or out of range get a 400 that names the field, and never
/// reach an agent; values in range, unknown fields and explicit nulls are accepted.
/// </summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class RequestValidationTests(ConformanceGateway gateway)
{
    /// <summary>
    /// A body written with single quotes for readability; <c>HI</c> stands for a valid
    /// <c>messages</c> field and <c>WEATHER</c> for a valid <c>tools</c> field.
    /// </summary>
    private static string J(string body) => body
        .Replace("HI", "'messages':[{'role':'user','content':'hi'}]", StringComparison.Ordinal)
        .Replace("WEATHER", "'tools':[{'type':'function','function':{'name':'get_weather','parameters':{'type':'object'}}}]", StringComparison.Ordinal)
        .Replace('\'', '"');

    private const string StopShape = "`stop` must be a string or an array of up to 4 non-empty strings.";
    private const string FormatType = "`response_format.type` must be `text`, `json_object` or `json_schema`.";
    private const string NameShape = "must be 1 to 64 letters, digits, '_' or '-'.";

    public static TheoryData<string, string> Invalid => new()
    {
        // wrong types
        { J("{'stream':'false',HI}"), "`stream` must be a boolean." },
        { J("{'messages':{}}"), "`messages` must be an array." },
        { J("{'messages':'hi'}"), "`messages` must be an array." },
        { J("{'max_tokens':'32',HI}"), "`max_tokens` must be a positive integer." },
        { J("{'model':42,HI}"), "`model` must be a string." },
        { J("{'user':{'id':1},HI}"), "`user` must be a string." },
        { J("{'stream_options':true,HI}"), "`stream_options` must be an object." },
        { J("{'stream_options':{'include_usage':1},HI}"), "`stream_options.include_usage` must be a boolean." },
        { J("{'messages':['hi']}"), "`messages[0]` must be an object." },
        { J("{'messages':[{'role':'user','content':'a'},{'role':7,'content':'b'}]}"), "`messages[1].role` must be a string." },
        { J("{'messages':[{'role':'user','content':5}]}"), "`messages[0].content` must be a string or an array of content parts." },
        { J("{'messages':[{'role':'user','content':{'type':'text','text':'hi'}}]}"), "`messages[0].content` must be a string or an array of content parts." },
        { J("{'messages':[{'role':'user','content':['hi']}]}"), "`messages[0].content[0]` must be an object." },
        { J("{'messages':[{'role':'user','content':[{'type':'text','text':3}]}]}"), "`messages[0].content[0].text` must be a string." },
        { J("{'messages':[{'role':'tool','content':'42','tool_call_id':9}]}"), "`messages[0].tool_call_id` must be a string." },
        { J("{'temperature':'hot',HI}"), "`temperature` must be a number." },
        { J("{'top_p':true,HI}"), "`top_p` must be a number." },
        { J("{'seed':1.5,HI}"), "`seed` must be an integer." },
        { J("{'seed':'7',HI}"), "`seed` must be an integer." },
        { J("{'seed':1e30,HI}"), "`seed` must be an integer." },
        // ranges
        { J("{'temperature':2.01,HI}"), "`temperature` must be between 0 and 2." },
        { J("{'temperature':-0.1,HI}"), "`temperature` must be between 0 and 2." },
        { J("{'temperature':1e400,HI}"), "`temperature` must be a number." },
        { J("{'top_p':1.5,HI}"), "`top_p` must be between 0 and 1." },
        { J("{'frequency_penalty':-2.5,HI}"), "`frequency_penalty` must be between -2 and 2." },
        { J("{'presence_penalty':3,HI}"), "`presence_penalty` must be between -2 and 2." },
        { J("{'max_tokens':0,HI}"), "`max_tokens` must be a positive integer." },
        { J("{'max_tokens':-5,HI}"), "`max_tokens` must be a positive integer." },
        { J("{'max_tokens':1.5,HI}"), "`max_tokens` must be a positive integer." },
        { J("{'max_tokens':3000000000,HI}"), "`max_tokens` must be a positive integer." },
        { J("{'max_completion_tokens':0,'max_tokens':10,HI}"), "`max_completion_tokens` must be a positive integer." },
        { J("{'max_completion_tokens':10,'max_tokens':0,HI}"), "`max_tokens` must be a positive integer." },
        { J("{'stop':'',HI}"), StopShape },
        { J("{'stop':['a',''],HI}"), StopShape },
        { J("{'stop':['a','b','c','d','e'],HI}"), StopShape },
        { J("{'stop':[1],HI}"), StopShape },
        { J("{'stop':5,HI}"), StopShape },
        // response_format
        { J("{'response_format':'json_object',HI}"), "`response_format` must be an object." },
        { J("{'response_format':{},HI}"), FormatType },
        { J("{'response_format':{'type':'xml'},HI}"), FormatType },
        { J("{'response_format':{'type':5},HI}"), "`response_format.type` must be a string." },
        { J("{'response_format':{'type':'json_schema'},HI}"), "`response_format.json_schema` must be an object." },
        { J("{'response_format':{'type':'json_schema','json_schema':{}},HI}"), "`response_format.json_schema.name` is required." },
        { J("{'response_format':{'type':'json_schema','json_schema':{'name':'my schema'}},HI}"), $"`response_format.json_schema.name` {NameShape}" },
        { J("{'response_format':{'type':'json_schema','json_schema':{'name':'s','schema':[]}},HI}"), "`response_format.json_schema.schema` must be an object." },
        { J("{'response_format':{'type':'json_schema','json_schema':{'name':'s','strict':'yes'}},HI}"), "`response_format.json_schema.strict` must be a boolean." },
        // tools and tool_choice
        { J("{'tools':{},HI}"), "`tools` must be an array." },
        { J("{'tools':['get_weather'],HI}"), "`tools[0]` must be an object." },
        { J("{'tools':[{'type':'code_interpreter'}],HI}"), "`tools[0].type` must be `function`: only function tools are supported." },
        { J("{'tools':[{'type':'function','function':{'name':'a'}},{'type':'web_search'}],HI}"), "`tools[1].type` must be `function`: only function tools are supported." },
        { J("{'tools':[{'type':'function'}],HI}"), "`tools[0].function` must be an object." },
        { J("{'tools':[{'type':'function','function':{}}],HI}"), "`tools[0].function.name` is required." },
        { J("{'tools':[{'type':'function','function':{'name':'get weather'}}],HI}"), $"`tools[0].function.name` {NameShape}" },
        { J("{'tools':[{'type':'function','function':{'name':'f','parameters':'none'}}],HI}"), "`tools[0].function.parameters` must be an object." },
        { J("{'tools':[{'type':'function','function':{'name':'f','description':1}}],HI}"), "`tools[0].function.description` must be a string." },
        { J("{'tool_choice':'required',HI}"), "`tool_choice` is `required` but `tools` is empty." },
        { J("{'tool_choice':'required','tools':[],HI}"), "`tool_choice` is `required` but `tools` is empty." },
        { J("{'tool_choice':'sometimes',WEATHER,HI}"), "`tool_choice` must be `none`, `auto`, `required` or {\"type\":\"function\",\"function\":{\"name\":…}}." },
        { J("{'tool_choice':5,WEATHER,HI}"), "`tool_choice` must be a string or an object." },
        { J("{'tool_choice':{'type':'function','function':{'name':'get_time'}},WEATHER,HI}"), "`tool_choice` names the function 'get_time', which is not in `tools`." },
        { J("{'tool_choice':{'type':'function','function':{'name':'get_weather'}},HI}"), "`tool_choice` names the function 'get_weather', which is not in `tools`." },
        { J("{'tool_choice':{'type':'allowed_tools'},WEATHER,HI}"), "`tool_choice.type` must be `function`." },
        { J("{'tool_choice':{'type':'function'},WEATHER,HI}"), "`tool_choice.function` must be an object." },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task An_invalid_field_is_400_naming_it_and_no_agent_runs(string body, string message)
    {
        using var client = gateway.Client();
        var runsBefore = gateway.Server.Metrics.RunsStarted;

        using var response = await Http.PostAsync(client, body);

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, message, "invalid_request_error");
        Assert.Equal(runsBefore, gateway.Server.Metrics.RunsStarted);
    }

    public static TheoryData<string> Valid =>
    [
        J("{HI}"),
        J("{'temperature':0,'top_p':0,'frequency_penalty':-2,'presence_penalty':-2,HI}"),
        J("{'temperature':2,'top_p':1,'frequency_penalty':2,'presence_penalty':2,HI}"),
        J("{'temperature':0.7,'top_p':0.95,'seed':-9007199254740993,HI}"),
        J("{'max_tokens':1,HI}"),
        J("{'max_completion_tokens':2147483647,'max_tokens':5,HI}"),
        J("{'stop':'END',HI}"),
        J("{'stop':['a','b','c','d'],HI}"),
        J("{'stop':[],HI}"),
        J("{'stream':false,'stream_options':{'include_usage':true},HI}"),
        J("{'response_format':{'type':'text'},HI}"),
        J("{'response_format':{'type':'json_object'},HI}"),
        J("{'response_format':{'type':'json_schema','json_schema':{'name':'answer_1','description':'d','schema':{'type':'object'},'strict':true}},HI}"),
        J("{WEATHER,'tool_choice':'auto',HI}"),
        J("{WEATHER,'tool_choice':'none',HI}"),
        J("{WEATHER,'tool_choice':'required',HI}"),
        J("{WEATHER,'tool_choice':{'type':'function','function':{'name':'get_weather'}},HI}"),
        J("{'tools':[{'type':'function','function':{'name':'f','description':'d','strict':false}}],HI}"),
        J("{'tools':[],'tool_choice':'auto',HI}"),
        J("{'n':3,'logprobs':true,'top_logprobs':2,'logit_bias':{'50256':-100},'metadata':{'a':'b'},'parallel_tool_calls':'x',HI}"),
        J("{'model':null,'user':null,'stream':null,'temperature':null,'top_p':null,'seed':null,'max_tokens':null,'stop':null,'response_format':null,'tools':null,'tool_choice':null,HI}"),
        J("{'messages':[{'role':'user','content':[{'type':'text','text':'hi'},{'type':'image_url','image_url':{'url':'data:,'}},{'type':'text'}]}]}"),
    ];

    [Theory]
    [MemberData(nameof(Valid))]
    public async Task Values_in_range_unknown_fields_and_nulls_are_accepted(string body)
    {
        using var client = gateway.Client();

        using var response = await Http.PostAsync(client, body);

        Assert.Equal(Http.EchoOf("hi"), await Http.ReplyAsync(response));
    }
}
