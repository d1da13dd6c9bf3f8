using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Sends raw requests and checks answers byte for byte, as the contract quotes them.</summary>
public static class Http
{
    public const string Completions = "/v1/chat/completions";
    public const string Models = "/v1/models";

    public const string UnauthorizedBody = """{"error":{"message":"Unauthorized","type":"unauthorized"}}""";
    public const string RateLimitedBody = """{"error":{"message":"Too many failed authentication attempts. Please try again later.","type":"rate_limited"}}""";
    public const string PayloadTooLargeBody = """{"error":{"message":"Payload too large","type":"invalid_request_error"}}""";
    public const string InternalErrorBody = """{"error":{"message":"internal error","type":"api_error"}}""";

    /// <summary>The gateway's JSON escaping: UTF-8 and backticks as they are (only what JSON requires is escaped).</summary>
    public static readonly JsonSerializerOptions Wire = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A body with one user message.</summary>
    public static string UserSays(string text, string? model = "openclaw") => new JsonObject
    {
        ["model"] = model,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
    }.ToJsonString(Wire);

    public static HttpRequestMessage Request(HttpMethod method, string path, string? body = null, string? authorization = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        if (authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", authorization);
        return request;
    }

    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string body, params (string Name, string Value)[] headers)
    {
        var request = Request(HttpMethod.Post, Completions, body);
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        return client.SendAsync(request);
    }

    /// <summary>The reply text of a 200 completion (asserting the 200).</summary>
    public static async Task<string> ReplyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    /// <summary>What the built-in agent answers when it was given <paramref name="input"/> in a fresh session.</summary>
    public static string EchoOf(string input, string agent = "main") =>
        $"Built-in agent '{agent}' received: \"{input}\". This session holds no earlier turns.";

    /// <summary>Asserts an OpenAI error envelope, whole: status, JSON content type and the exact body.</summary>
    public static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string message, string type, string? code = null)
    {
        var expected = new JsonObject { ["error"] = ErrorBody(message, type, code) }.ToJsonString(Wire);
        await AssertJsonBodyAsync(response, status, expected);
    }

    public static async Task AssertJsonBodyAsync(HttpResponseMessage response, HttpStatusCode status, string expectedBody)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(expectedBody, body);
    }

    /// <summary>Asserts a 4xx or 5xx whose body is the OpenAI envelope (message and type strings, optional code).</summary>
    public static void AssertEnvelope(string body)
    {
        using var json = JsonDocument.Parse(body);
        var error = json.RootElement.GetProperty("error");
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        foreach (var property in error.EnumerateObject()) Assert.Contains(property.Name, (string[])["message", "type", "code"]);
        Assert.Single(json.RootElement.EnumerateObject());
    }

    public static async Task AssertPlainTextAsync(HttpResponseMessage response, HttpStatusCode status, string text)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(text, await response.Content.ReadAsStringAsync());
    }

    private static JsonObject ErrorBody(string message, string type, string? code)
    {
        var body = new JsonObject { ["message"] = message, ["type"] = type };
        if (code is not null) body["code"] = code;
        return body;
    }
}
