using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Gateway.Api.Http;

/// <summary>
/// A small JSON answer written in one piece: serialized synchronously into a buffer, sent with its
/// <c>Content-Length</c>. <c>TypedResults.Json</c> serializes asynchronously to the response stream
/// and answers chunked, which for a body of a few hundred bytes costs more than the body; the JSON
/// itself is still System.Text.Json's, from the same source-generated metadata and options.
/// </summary>
internal sealed class JsonAnswerResult<T>(T value, JsonTypeInfo<T> typeInfo, int statusCode = StatusCodes.Status200OK) : IResult
{
    public Task ExecuteAsync(HttpContext context)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = typeInfo.Options.Encoder }))
            JsonSerializer.Serialize(json, value, typeInfo);
        var response = context.Response;
        response.StatusCode = statusCode;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = buffer.WrittenCount;
        return response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
    }
}
