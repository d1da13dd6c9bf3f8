using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Properties over random input (CsCheck): whatever JSON value or bytes a client sends, the answer is a
/// 2xx, or a 4xx in the OpenAI envelope; never a 5xx and never a connection left hanging.
/// </summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class RandomInputPropertyTests(ConformanceGateway gateway)
{
    private static readonly TimeSpan PerRequest = TimeSpan.FromSeconds(10);

    private static readonly Gen<string> Text = Gen.OneOf(
        Gen.String[0, 12],
        Gen.String[Gen.Char["abcxyz \n\t\"\\/`'{}[]:,0123456789é😀"], 0, 12],
        Gen.OneOfConst("", "openclaw", "openclaw/beta", "agent:main", "openclaw:ghost", "user", "assistant", "tool", "system",
            "developer", "text", "input_text", "function", "json_schema", "json_object", "auto", "none", "required", "\ud800"));

    private static readonly Gen<JsonNode?> Scalar = Gen.Frequency(
        (1, Gen.Const((JsonNode?)null)),
        (1, Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b))),
        (2, Gen.Int[-5, 5].Select(i => (JsonNode?)JsonValue.Create(i))),
        (1, Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l))),
        (1, Gen.Double.Where(double.IsFinite).Select(d => (JsonNode?)JsonValue.Create(d))),
        (1, Gen.Double[-3, 3].Select(d => (JsonNode?)JsonValue.Create(d))),
        (3, Text.Select(s => (JsonNode?)JsonValue.Create(s))));

    /// <summary>Any JSON value, a few levels deep.</summary>
    private static readonly Gen<JsonNode?> AnyJson = Gen.Recursive<JsonNode?>((depth, inner) => depth >= 3
        ? Scalar
        : Gen.Frequency(
            (3, Scalar),
            (1, inner.Array[0, 4].Select(items => (JsonNode?)new JsonArray([.. items.Select(item => item?.DeepClone())]))),
            (1, Gen.Select(Text, inner).Array[0, 4].Select(Object))));

    private static readonly Gen<JsonNode?> Message = Gen.Select(
        Gen.FrequencyConst((6, "user"), (1, "assistant"), (1, "tool"), (1, "system"), (1, "developer"), (1, "USER"), (1, "narrator"))
            .Select(r => (JsonNode?)JsonValue.Create(r)),
        Gen.Frequency((6, Text.Select(s => (JsonNode?)JsonValue.Create(s))), (1, AnyJson)),
        Gen.Frequency((6, Gen.Const((JsonNode?)null)), (1, AnyJson)),
        (role, content, toolCallId) => (JsonNode?)new JsonObject { ["role"] = role, ["content"] = content, ["tool_call_id"] = toolCallId });

    private static Gen<JsonNode?> Number(double min, double max) => Gen.Double[min, max].Select(d => (JsonNode?)JsonValue.Create(d));

    private static Gen<JsonNode?> Json(string text) => Gen.Const(() => JsonNode.Parse(text));

    /// <summary>Each field the endpoint reads, with values mostly near what it accepts.</summary>
    private static readonly (string Name, Gen<JsonNode?> Value)[] Fields =
    [
        ("model", Gen.OneOfConst("openclaw", "openclaw/beta", "agent:main", "openclaw:ghost", "gpt-4", "").Select(m => (JsonNode?)JsonValue.Create(m))),
        ("stream", Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b))),
        ("stream_options", Gen.Bool.Select(b => (JsonNode?)new JsonObject { ["include_usage"] = b })),
        ("temperature", Number(-0.5, 2.5)),
        ("top_p", Number(-0.2, 1.2)),
        ("frequency_penalty", Number(-2.5, 2.5)),
        ("presence_penalty", Number(-2.5, 2.5)),
        ("seed", Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l))),
        ("max_tokens", Gen.Int[-2, 5000].Select(i => (JsonNode?)JsonValue.Create(i))),
        ("max_completion_tokens", Gen.Int[-2, 5000].Select(i => (JsonNode?)JsonValue.Create(i))),
        ("stop", Text.Array[0, 5].Select(s => (JsonNode?)new JsonArray([.. s.Select(x => (JsonNode?)JsonValue.Create(x))]))),
        ("response_format", Gen.OneOf(Json("""{"type":"text"}"""), Json("""{"type":"json_object"}"""),
            Json("""{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"}}}"""))),
        ("tools", Json("""[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]""")),
        ("tool_choice", Gen.OneOf(Json("\"auto\""), Json("\"none\""), Json("\"required\""), Json("""{"type":"function","function":{"name":"f"}}"""))),
        ("user", Text.Select(s => (JsonNode?)JsonValue.Create(s))),
        ("n", Gen.Int[0, 3].Select(i => (JsonNode?)JsonValue.Create(i))),
    ];

    private static readonly Gen<(string Name, JsonNode? Value)> Field = Gen.Int[0, Fields.Length - 1].SelectMany(index =>
        Gen.Frequency<JsonNode?>((9, Fields[index].Value), (1, AnyJson)).Select(value => (Fields[index].Name, value)));

    /// <summary>Objects with the request's own fields, mostly with messages: many are valid, many are a little off.</summary>
    private static readonly Gen<JsonNode?> RequestLike = Gen.Select(
        Field.Array[0, 4],
        Message.Array[1, 4],
        Gen.Int[0, 9],
        (fields, messages, shape) =>
        {
            var body = Object(fields)!.AsObject();
            if (shape > 0) body["messages"] = new JsonArray([.. messages]);
            return (JsonNode?)body;
        });

    /// <summary>Mostly none; sometimes a random agent id or session key.</summary>
    private static readonly Gen<(string Name, string Value)[]> Headers = Gen.Frequency(
        (3, Gen.Const(() => Array.Empty<(string, string)>())),
        (1, Gen.Select(Gen.OneOfConst("x-openclaw-agent-id", "x-openclaw-session-key"), Gen.String[Gen.Char[' ', '~'], 0, 20]).Array[1, 2]));

    [Fact]
    public Task Random_JSON_values_get_a_2xx_or_a_4xx_envelope_and_never_hang() =>
        Gen.Select(Gen.Frequency((1, AnyJson), (3, RequestLike)), Headers).SampleAsync(
            (json, headers) => AssertAnswerAsync(Encoding.UTF8.GetBytes(json?.ToJsonString() ?? "null"), headers),
            iter: 400, print: sample => $"{sample.Item1?.ToJsonString() ?? "null"} with headers [{string.Join(", ", sample.Item2)}]");

    [Fact]
    public Task Random_bytes_get_a_2xx_or_a_4xx_envelope_and_never_hang() =>
        Gen.Frequency(
                (2, Gen.Byte.Array[0, 300]),
                (1, RequestLike.Select(Gen.Int[0, 200], Gen.Byte, (json, at, value) => Corrupt(json, at, value)))
            ).SampleAsync(bytes => AssertAnswerAsync(bytes, []), iter: 300, print: Convert.ToHexString);

    private async Task AssertAnswerAsync(byte[] body, (string Name, string Value)[] headers)
    {
        using var timeout = new CancellationTokenSource(PerRequest);
        using var client = gateway.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, Http.Completions) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);

        string text;
        HttpStatusCode status;
        try
        {
            using var response = await client.SendAsync(request, timeout.Token);
            status = response.StatusCode;
            text = await response.Content.ReadAsStringAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new Xunit.Sdk.XunitException($"no complete answer within {PerRequest.TotalSeconds} s");
        }

        var code = (int)status;
        Assert.True(code is >= 200 and < 300 or >= 400 and < 500, $"status {code}: {text}");
        if (code >= 400) Http.AssertEnvelope(text);
    }

    private static JsonNode? Object((string Key, JsonNode? Value)[] properties)
    {
        var result = new JsonObject();
        foreach (var (key, value) in properties) result[key] = value?.DeepClone();
        return result;
    }

    private static byte[] Corrupt(JsonNode? json, int at, byte value)
    {
        var bytes = Encoding.UTF8.GetBytes(json?.ToJsonString() ?? "null");
        if (bytes.Length > 0) bytes[at % bytes.Length] = value;
        return bytes;
    }
}
