using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.Bench.Servers;

/// <summary>
/// What the baseline answers: the bytes the gateway sent for the same request (captured by the
/// harness), with the same headers. For a stream, <see cref="Frames"/> are the gateway's SSE events
/// (each <c>data: …\n\n</c>): the first (the role chunk), then the content events, then the last two
/// (the finish chunk and <c>[DONE]</c>). <see cref="ContentEvents"/> content events are sent, cycling
/// through the captured ones, each after <see cref="PieceDelayMs"/> like the built-in agent's pieces.
/// </summary>
public sealed record BaselineResponse(
    Dictionary<string, string> Headers,
    bool ServerSentEvents,
    byte[][] Frames,
    long ContentEvents,
    int PieceDelayMs,
    bool SendContentLength)
{
    public const int EndingFrames = 2;

    public static BaselineResponse Load(string path) =>
        JsonSerializer.Deserialize<BaselineResponse>(File.ReadAllBytes(path)) ?? throw new InvalidDataException($"empty response file {path}");

    public void Save(string path) => File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(this));
}

/// <summary>
/// The baseline: a bare Kestrel app on the same path, with the same Kestrel settings as the gateway
/// (loopback, no Server header, the gateway's GC mode set by the harness), that reads the request body and answers
/// with <see cref="BaselineResponse"/>: no actors, no streams, no JSON. Every event is flushed on its
/// own, as the gateway's SSE writer does.
/// </summary>
public static class BaselineServer
{
    public const string Path = "/v1/chat/completions";

    public static async Task<int> RunAsync(int port, string responseFile)
    {
        var answer = BaselineResponse.Load(responseFile);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, port);
        });
        var app = builder.Build();
        app.MapGet("/readyz", () => TypedResults.Text("ready", "text/plain"));
        RequestDelegate handler = answer.ServerSentEvents ? context => StreamAsync(context, answer) : context => CompleteAsync(context, answer);
        app.MapPost(Path, handler);
        await app.RunAsync();
        return 0;
    }

    private static async Task ReadBodyAsync(HttpContext context)
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted);
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled) return;
        }
    }

    private static void WriteHeaders(HttpResponse response, BaselineResponse answer)
    {
        response.StatusCode = StatusCodes.Status200OK;
        foreach (var (name, value) in answer.Headers) response.Headers[name] = value;
    }

    private static async Task CompleteAsync(HttpContext context, BaselineResponse answer)
    {
        await ReadBodyAsync(context);
        var body = answer.Frames[0];
        WriteHeaders(context.Response, answer);
        if (answer.SendContentLength) context.Response.ContentLength = body.Length;
        await context.Response.BodyWriter.WriteAsync(body, context.RequestAborted);
    }

    private static async Task StreamAsync(HttpContext context, BaselineResponse answer)
    {
        var aborted = context.RequestAborted;
        try
        {
            await ReadBodyAsync(context);
            WriteHeaders(context.Response, answer);
            var writer = context.Response.BodyWriter;
            var frames = answer.Frames;
            var contentCount = frames.Length - 1 - BaselineResponse.EndingFrames;
            await writer.WriteAsync(frames[0], aborted);
            for (var i = 0L; i < answer.ContentEvents && contentCount > 0; i++)
            {
                if (answer.PieceDelayMs > 0) await Task.Delay(answer.PieceDelayMs, aborted);
                await writer.WriteAsync(frames[1 + (int)(i % contentCount)], aborted);
            }
            for (var i = frames.Length - BaselineResponse.EndingFrames; i < frames.Length; i++)
                await writer.WriteAsync(frames[i], aborted);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client left.
        }
    }
}
