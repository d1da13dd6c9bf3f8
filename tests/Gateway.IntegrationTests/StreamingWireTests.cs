using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>A streamed answer, byte for byte as an OpenAI client reads it off the wire (spec §8).</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class StreamingWireTests(DefaultGatewayFixture fixture)
{
    private const string Message = "wire check";

    [Fact]
    public async Task Stream_headers_say_event_stream_no_cache_and_nosniff()
    {
        using var client = fixture.Server.CreateClient();
        using var response = await ChatApi.StartStreamAsync(client, ChatApi.Body(Message));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", Assert.Single(response.Headers.GetValues("Cache-Control")));
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        await ReadToEndAsync(response);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stream_is_data_only_events_in_the_fixed_order_ending_with_done(bool includeUsage)
    {
        using var client = fixture.Server.CreateClient();
        using var response = await ChatApi.StartStreamAsync(client, ChatApi.Body(Message, model: "openclaw", includeUsage: includeUsage));
        var bytes = await ReadToEndAsync(response);
        var wire = Encoding.UTF8.GetString(bytes);

        // Raw framing: every event is exactly "data: <one line>\n\n"; nothing else is on the wire.
        Assert.EndsWith("data: [DONE]\n\n", wire);
        Assert.DoesNotContain("\r", wire);
        Assert.DoesNotContain("event:", wire);
        var rawEvents = wire[..^2].Split("\n\n");
        foreach (var rawEvent in rawEvents)
        {
            Assert.StartsWith("data: ", rawEvent);
            Assert.DoesNotContain("\n", rawEvent);
        }
        Assert.Equal("data: [DONE]", rawEvents[^1]);
        Assert.Equal(1, rawEvents.Count(e => e == "data: [DONE]"));
        // The role chunk, compact, with finish_reason written as null (not left out).
        Assert.Matches("""^data: \{"id":"chatcmpl_[^"]+","object":"chat.completion.chunk","created":\d+,"model":"openclaw","choices":\[\{"index":0,"delta":\{"role":"assistant","content":""\},"finish_reason":null\}\]\}$""", rawEvents[0]);

        // The same bytes through the SSE parser an OpenAI client would use.
        var items = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(new MemoryStream(bytes)).EnumerateAsync()) items.Add(item);
        Assert.Equal(rawEvents.Length, items.Count);
        Assert.All(items, item => Assert.Equal(SseParser.EventTypeDefault, item.EventType));
        Assert.Equal("[DONE]", items[^1].Data);

        var chunks = items.SkipLast(1).Select(item => JsonDocument.Parse(item.Data).RootElement).ToList();
        var first = chunks[0];
        var id = first.GetProperty("id").GetString()!;
        Assert.StartsWith("chatcmpl_", id);
        var created = first.GetProperty("created").GetInt64();
        Assert.All(chunks, chunk =>
        {
            Assert.Equal(id, chunk.GetProperty("id").GetString());
            Assert.Equal(created, chunk.GetProperty("created").GetInt64());
            Assert.Equal("openclaw", chunk.GetProperty("model").GetString());
            Assert.Equal("chat.completion.chunk", chunk.GetProperty("object").GetString());
        });

        // 1. role chunk
        var role = Assert.Single(first.GetProperty("choices").EnumerateArray());
        Assert.Equal("assistant", role.GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("", role.GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(JsonValueKind.Null, role.GetProperty("finish_reason").ValueKind);

        // 2. content chunks, finish_reason null and present
        var finishIndex = chunks.FindIndex(chunk => Choice(chunk) is { } choice && choice.GetProperty("finish_reason").ValueKind != JsonValueKind.Null);
        Assert.True(finishIndex > 1, "content chunks come between the role chunk and the finish chunk");
        var content = new StringBuilder();
        foreach (var chunk in chunks[1..finishIndex])
        {
            var choice = Assert.IsType<JsonElement>(Choice(chunk));
            Assert.Equal(JsonValueKind.Null, choice.GetProperty("finish_reason").ValueKind);
            var delta = choice.GetProperty("delta");
            Assert.False(delta.TryGetProperty("role", out _), "only the first chunk carries the role");
            content.Append(delta.GetProperty("content").GetString());
        }
        Assert.Equal(ChatApi.FreshReply(Message), content.ToString());

        // 3. exactly one finish chunk: empty delta, "stop"
        var finish = Assert.IsType<JsonElement>(Choice(chunks[finishIndex]));
        Assert.Equal("stop", finish.GetProperty("finish_reason").GetString());
        Assert.Empty(finish.GetProperty("delta").EnumerateObject());
        Assert.False(chunks[finishIndex].TryGetProperty("usage", out _));

        // 4. the usage chunk, only when asked for; nothing else after the finish chunk
        var afterFinish = chunks[(finishIndex + 1)..];
        if (includeUsage)
        {
            var usageChunk = Assert.Single(afterFinish);
            Assert.Empty(usageChunk.GetProperty("choices").EnumerateArray());
            var usage = usageChunk.GetProperty("usage");
            Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
            Assert.True(usage.GetProperty("completion_tokens").GetInt32() > 0);
            Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(),
                usage.GetProperty("total_tokens").GetInt32());
        }
        else
        {
            Assert.Empty(afterFinish);
            Assert.DoesNotContain("\"usage\"", wire);
        }
    }

    /// <summary>The only choice of a chunk, or null for the usage chunk.</summary>
    private static JsonElement? Choice(JsonElement chunk)
    {
        var choices = chunk.GetProperty("choices");
        return choices.GetArrayLength() == 0 ? null : Assert.Single(choices.EnumerateArray());
    }

    /// <summary>Reads the body until the server ends the response; fails if it does not end after [DONE].</summary>
    private static async Task<byte[]> ReadToEndAsync(HttpResponseMessage response)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var body = await response.Content.ReadAsStreamAsync(deadline.Token);
        using var bytes = new MemoryStream();
        try
        {
            await body.CopyToAsync(bytes, deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            Assert.Fail($"The response did not end; read so far: {Encoding.UTF8.GetString(bytes.ToArray())}");
        }
        return bytes.ToArray();
    }
}
