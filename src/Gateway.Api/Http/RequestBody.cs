using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;

namespace Gateway.Api.Http;

/// <summary>Reads a JSON request body within the 20 MiB limit (spec §6).</summary>
public static class RequestBody
{
    public const long MaxBytes = 20 * 1024 * 1024;

    /// <summary>The server's limit (Kestrel's): how much of a refused body it will still read and drop.</summary>
    public const long DrainLimitBytes = 2 * MaxBytes;

    /// <summary>
    /// Reads the whole body and parses it. The limit is checked from <c>Content-Length</c> before
    /// reading and on the bytes read (chunked bodies too); an empty body reads as <c>{}</c>.
    /// </summary>
    /// <returns>The document, or the refusal to send: 413, or 400 with the parser's message.</returns>
    /// <exception cref="OperationCanceledException">The client left while sending.</exception>
    public static async Task<(JsonDocument? Document, IResult? Refusal)> ReadJsonAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBytes) return (null, ApiErrors.PayloadTooLarge());
        var reader = context.Request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(context.RequestAborted);
                var buffer = result.Buffer;
                if (buffer.Length > MaxBytes)
                {
                    reader.AdvanceTo(buffer.End);
                    return (null, ApiErrors.PayloadTooLarge());
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    try
                    {
                        // A JsonDocument keeps reading the memory it was parsed from, and Kestrel reuses its
                        // body buffers once advanced past: the document gets its own copy.
                        return (buffer.IsEmpty ? JsonDocument.Parse("{}") : JsonDocument.Parse(buffer.ToArray()), null);
                    }
                    finally
                    {
                        reader.AdvanceTo(buffer.End);
                    }
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (JsonException ex)
        {
            return (null, ApiErrors.InvalidRequest(ex.Message));
        }
        catch (BadHttpRequestException ex)
        {
            return (null, ApiErrors.FromBadRequest(ex));
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested)
        {
            throw new OperationCanceledException(context.RequestAborted);
        }
    }
}
