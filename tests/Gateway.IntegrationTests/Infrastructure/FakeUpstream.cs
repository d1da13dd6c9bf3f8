using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Gateway.Agents;

namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>How the fake upstream answers one request.</summary>
/// <param name="Status">Fail with this status (and an OpenAI-style error body) instead of streaming.</param>
/// <param name="StallFirst">Wait this long before the first chunk (headers are sent at once).</param>
/// <param name="PieceDelay">Wait this long before each piece.</param>
/// <param name="FailAfterPieces">Drop the connection after this many pieces.</param>
/// <param name="ToolCalls">Stream these tool calls (name, JSON arguments) and finish with tool_calls.</param>
public sealed record FakeReply(
    IReadOnlyList<string>? Pieces = null,
    int? Status = null,
    string? RetryAfter = null,
    TimeSpan? StallFirst = null,
    TimeSpan? PieceDelay = null,
    int? FailAfterPieces = null,
    (int Prompt, int Completion)? Usage = null,
    IReadOnlyList<(string Id, string Name, string Arguments)>? ToolCalls = null)
{
    public static FakeReply Text(params string[] pieces) => new(pieces);
}

/// <summary>
/// A real OpenAI-compatible model server on 127.0.0.1 (Kestrel): streams scripted answers as
/// <c>chat.completion.chunk</c> SSE, records every request body, and notices aborted requests.
/// Replies are taken from a queue in arrival order; with none queued it answers "Hello from upstream".
/// </summary>
public sealed class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeReply> _replies = new();
    private long _bytesWritten;
    private int _aborted;
    private int _completed;

    private FakeUpstream(WebApplication app) => _app = app;

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Every request body received, in order.</summary>
    public ConcurrentQueue<JsonObject> Requests { get; } = new();

    /// <summary>Requests whose client went away before the answer was complete.</summary>
    public int Aborted => Volatile.Read(ref _aborted);

    public int Completed => Volatile.Read(ref _completed);

    /// <summary>Bytes of answers written (and flushed) so far, all requests together.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public void Enqueue(params FakeReply[] replies)
    {
        foreach (var reply in replies) _replies.Enqueue(reply);
    }

    public static async Task<FakeUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var upstream = new FakeUpstream(app);
        app.MapPost("/v1/chat/completions", upstream.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        upstream.BaseUrl = new Uri(address + "/v1");
        return upstream;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
        Requests.Enqueue(body);
        var reply = _replies.TryDequeue(out var next) ? next : FakeReply.Text("Hello", " from", " upstream");
        var aborted = context.RequestAborted;
        if (reply.Status is { } status)
        {
            context.Response.StatusCode = status;
            if (reply.RetryAfter is { } retryAfter) context.Response.Headers.RetryAfter = retryAfter;
            await context.Response.WriteAsJsonAsync(new { error = new { message = $"fake failure {status}", type = "server_error" } });
            return;
        }

        context.Response.ContentType = "text/event-stream";
        await context.Response.StartAsync(aborted);
        var model = body["model"]?.GetValue<string>() ?? "fake";
        var includeUsage = body["stream_options"]?["include_usage"]?.GetValue<bool>() == true;
        try
        {
            if (reply.StallFirst is { } stall) await Task.Delay(stall, aborted);
            await WriteChunkAsync(context, model, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null);
            var pieces = reply.Pieces ?? [];
            for (var i = 0; i < pieces.Count; i++)
            {
                if (reply.FailAfterPieces == i)
                {
                    // Let the client read what was sent: a reset discards data still unread in its buffers.
                    await Task.Delay(200, aborted);
                    context.Abort();
                    return;
                }
                if (reply.PieceDelay is { } delay) await Task.Delay(delay, aborted);
                await WriteChunkAsync(context, model, new JsonObject { ["content"] = pieces[i] }, null);
            }
            var finish = "stop";
            if (reply.ToolCalls is { } calls)
            {
                finish = "tool_calls";
                for (var i = 0; i < calls.Count; i++)
                {
                    var (id, name, arguments) = calls[i];
                    // As OpenAI sends them: the id and name first, then the arguments in pieces.
                    await WriteChunkAsync(context, model, ToolCallDelta(i, id, name, ""), null);
                    foreach (var part in Halves(arguments)) await WriteChunkAsync(context, model, ToolCallDelta(i, null, null, part), null);
                }
            }
            await WriteChunkAsync(context, model, new JsonObject(), finish);
            if (includeUsage)
            {
                var (prompt, completion) = reply.Usage ?? (11, 7);
                await WriteRawAsync(context, JsonSerializer.Serialize(new
                {
                    id = "chatcmpl-fake", @object = "chat.completion.chunk", created = 1, model, choices = Array.Empty<object>(),
                    usage = new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion },
                }));
            }
            await WriteRawAsync(context, "[DONE]");
            Interlocked.Increment(ref _completed);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            Interlocked.Increment(ref _aborted);
        }
        catch (IOException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    private static JsonObject ToolCallDelta(int index, string? id, string? name, string arguments)
    {
        var function = new JsonObject { ["arguments"] = arguments };
        if (name is not null) function["name"] = name;
        var call = new JsonObject { ["index"] = index, ["function"] = function };
        if (id is not null)
        {
            call["id"] = id;
            call["type"] = "function";
        }
        return new JsonObject { ["tool_calls"] = new JsonArray(call) };
    }

    private static IEnumerable<string> Halves(string text) =>
        text.Length < 2 ? [text] : [text[..(text.Length / 2)], text[(text.Length / 2)..]];

    private Task WriteChunkAsync(HttpContext context, string model, JsonObject delta, string? finishReason)
    {
        var chunk = new JsonObject
        {
            ["id"] = "chatcmpl-fake",
            ["object"] = "chat.completion.chunk",
            ["created"] = 1,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason }),
        };
        return WriteRawAsync(context, chunk.ToJsonString());
    }

    private async Task WriteRawAsync(HttpContext context, string data)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes($"data: {data}\n\n");
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        Interlocked.Add(ref _bytesWritten, bytes.Length);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
