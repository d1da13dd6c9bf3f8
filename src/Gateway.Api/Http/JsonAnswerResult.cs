using System.Buffers;
using System.Text.Json.Serialization.Metadata;
using Gateway.Streams.Wire;

namespace Gateway.Api.Http;

/// <summary>
/// A small JSON answer written in one piece: serialized synchronously (<see cref="WireJson"/>'s options
/// and per-thread buffer), sent with its <c>Content-Length</c>. <c>TypedResults.Json</c> serializes
/// asynchronously to the response stream and answers chunked, which for a body of a few hundred bytes
/// costs more than the body; the JSON itself is still System.Text.Json's, from source-generated metadata.
/// </summary>
internal sealed class JsonAnswerResult<T>(T value, JsonTypeInfo<T> typeInfo, int statusCode = StatusCodes.Status200OK) : IResult
{
    public Task ExecuteAsync(HttpContext context)
    {
        var json = WireJson.SerializeToThreadBuffer(value, typeInfo);
        var response = context.Response;
        response.StatusCode = statusCode;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = json.Length;
        // Appended without a flush: Kestrel sends it with the end of the response, in one write.
        response.BodyWriter.Write(json);
        return Task.CompletedTask;
    }
}
