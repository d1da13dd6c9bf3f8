using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>Builds chat completion requests and reads their answers, the way a raw HTTP client would.</summary>
public static class ChatApi
{
    public const string Path = "/v1/chat/completions";

    /// <summary>What the built-in agent answers to <paramref name="message"/> in a session with no earlier turns.</summary>
    public static string FreshReply(string message, string agent = "main") =>
        $"Built-in agent '{agent}' received: \"{message}\". This session holds no earlier turns.";

    /// <summary>What the built-in agent says about a session that remembers one turn, which said <paramref name="earlier"/>.</summary>
    public static string OneEarlierTurn(string earlier) =>
        $"This session holds 1 earlier turn(s); the last one said: \"{earlier}\".";

    public const string NoEarlierTurns = "This session holds no earlier turns.";

    /// <summary>A request body with one user message.</summary>
    public static JsonObject Body(string message, string model = "openclaw", bool stream = false, string? user = null, bool? includeUsage = null)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = message }),
        };
        if (stream) body["stream"] = true;
        if (user is not null) body["user"] = user;
        if (includeUsage is { } include) body["stream_options"] = new JsonObject { ["include_usage"] = include };
        return body;
    }

    public static HttpRequestMessage Request(JsonObject body, string? sessionKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Path)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (sessionKey is not null) request.Headers.Add("x-openclaw-session-key", sessionKey);
        return request;
    }

    /// <summary>Sends a non-streamed request and returns the assistant's reply text (asserting a 200).</summary>
    public static async Task<string> CompleteAsync(HttpClient client, JsonObject body, string? sessionKey = null, CancellationToken cancellationToken = default)
    {
        using var request = Request(body, sessionKey);
        using var response = await client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    /// <summary>Starts a streamed request and returns once the headers are in; the body is read as it comes.</summary>
    public static async Task<HttpResponseMessage> StartStreamAsync(HttpClient client, JsonObject body, string? sessionKey = null, CancellationToken cancellationToken = default)
    {
        body["stream"] = true;
        using var request = Request(body, sessionKey);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            response.Dispose();
            Assert.Fail($"{(int)response.StatusCode}: {text}");
        }
        return response;
    }

    /// <summary>The SSE events of a streamed answer as they arrive, parsed with <see cref="SseParser"/>.</summary>
    public static async IAsyncEnumerable<SseItem<string>> EventsAsync(HttpResponseMessage response, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken)) yield return item;
    }

    /// <summary>Reads a streamed answer to its end and returns the concatenated content deltas.</summary>
    public static async Task<string> StreamedReplyAsync(HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        var reply = new StringBuilder();
        await foreach (var item in EventsAsync(response, cancellationToken))
        {
            if (item.Data == "[DONE]") break;
            reply.Append(ContentOf(item.Data));
        }
        return reply.ToString();
    }

    /// <summary>The <c>delta.content</c> of a chunk, or null when it has none.</summary>
    public static string? ContentOf(string chunkJson)
    {
        using var json = JsonDocument.Parse(chunkJson);
        if (!json.RootElement.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0) return null;
        return choices[0].GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : null;
    }
}
