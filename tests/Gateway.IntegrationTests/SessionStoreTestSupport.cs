using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Shared by the session-store tests: configs, and reading the store's failures off the wire.</summary>
public static class SessionStoreTestSupport
{
    public const string RefusedHeader = "The gateway cannot start; fix the config:";
    public const string ConnectionStringKey = "gateway.sessions.persistence.connectionString";
    public const string UnavailableCode = "session_store_unavailable";

    /// <summary>A <c>gateway.sessions</c> block for <paramref name="provider"/> (the connection string in single quotes, as JSON5 allows).</summary>
    public static string Sessions(string provider, string connectionString) =>
        $"sessions: {{ persistence: {{ provider: '{provider}', connectionString: '{connectionString}' }} }},";

    /// <summary>A gateway config for an in-process <see cref="GatewayServer"/> (port 0) with the given sessions block.</summary>
    public static string InProcessConfig(string sessions) => DurableSessionTests.Config(0, sessions);

    /// <summary>Sends a non-streamed turn and returns its status and body, whatever the status.</summary>
    public static async Task<(HttpStatusCode Status, JsonDocument Body)> SendAsync(HttpClient client, JsonObject body, string? sessionKey = null)
    {
        using var request = ChatApi.Request(body, sessionKey);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text));
    }

    /// <summary>Asserts an OpenAI error envelope saying the session store is unavailable.</summary>
    public static void AssertStoreUnavailable(JsonElement envelope)
    {
        var error = envelope.GetProperty("error");
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.Equal(UnavailableCode, error.GetProperty("code").GetString());
    }

    /// <summary>
    /// Reads a streamed answer to its end and asserts it ended with the store's error event and then
    /// <c>[DONE]</c>, with no finish chunk before them; returns the content that streamed before the error.
    /// </summary>
    public static async Task<string> AssertStreamEndsWithStoreErrorAsync(HttpResponseMessage response)
    {
        var data = new List<string>();
        await foreach (var item in ChatApi.EventsAsync(response)) data.Add(item.Data);
        Assert.True(data.Count >= 2, $"the stream ended after {data.Count} event(s)");
        Assert.Equal("[DONE]", data[^1]);
        using (var last = JsonDocument.Parse(data[^2]))
            AssertStoreUnavailable(last.RootElement);
        var content = new System.Text.StringBuilder();
        foreach (var chunkText in data.SkipLast(2))
        {
            using var chunk = JsonDocument.Parse(chunkText);
            Assert.False(chunk.RootElement.TryGetProperty("error", out _), $"an error event before the last one: {chunkText}");
            var choices = chunk.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 0) continue;
            Assert.False(choices[0].TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String,
                $"a finish chunk went out although the turn could not be recorded: {chunkText}");
            content.Append(ChatApi.ContentOf(chunkText));
        }
        return content.ToString();
    }

    public static async Task<HttpResponseMessage> StartStreamAsync(HttpClient client, JsonObject body)
    {
        body["stream"] = true;
        using var request = ChatApi.Request(body);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
