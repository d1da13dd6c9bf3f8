using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Gateway.Agents;

namespace Gateway.Streams.Wire;

// The OpenAI Chat Completions response shapes the gateway writes (spec §7, §8), with OpenAI's member
// order: id, object, created, model, choices, usage.

/// <summary>What every chunk of one answer shares: the run id, its creation time and the echoed model.</summary>
public sealed record ChatAnswerHeader(string Id, long Created, string Model);

public sealed record ChatCompletion(
    [property: JsonPropertyName("id"), JsonPropertyOrder(-2)] string Id,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("choices")] IReadOnlyList<ChatCompletionChoice> Choices,
    [property: JsonPropertyName("usage")] ChatUsage Usage)
{
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
    public string Object => "chat.completion";
}

public sealed record ChatCompletionChoice(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("message")] ChatMessageOut Message,
    [property: JsonPropertyName("finish_reason")] string FinishReason);

/// <summary>The answer's message; <c>content</c> is null (and written) when the model only called tools.</summary>
public sealed record ChatMessageOut(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("content")] string? Content,
    [property: JsonPropertyName("tool_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ChatToolCall>? ToolCalls = null);

public sealed record ChatToolCall(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("function")] ChatFunctionCall Function)
{
    [JsonPropertyName("type")]
    [JsonPropertyOrder(1)]
    public string Type => "function";
}

public sealed record ChatFunctionCall(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("arguments")] string Arguments);

/// <summary>A piece of a tool call in a stream chunk; absent fields are left out, as OpenAI does.</summary>
public sealed record ChatToolCallChunk(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id,
    [property: JsonPropertyName("type"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Type,
    [property: JsonPropertyName("function")] ChatFunctionCallChunk Function);

public sealed record ChatFunctionCallChunk(
    [property: JsonPropertyName("name"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
    [property: JsonPropertyName("arguments"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Arguments);

public sealed record ChatUsage(
    [property: JsonPropertyName("prompt_tokens")] int PromptTokens,
    [property: JsonPropertyName("completion_tokens")] int CompletionTokens,
    [property: JsonPropertyName("total_tokens")] int TotalTokens)
{
    public static ChatUsage From(TokenUsage usage) => new(usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens);
}

public sealed record ChatCompletionChunk(
    [property: JsonPropertyName("id"), JsonPropertyOrder(-2)] string Id,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("choices")] IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonPropertyName("usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatUsage? Usage = null)
{
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
    public string Object => "chat.completion.chunk";
}

/// <summary>A chunk's choice. <c>finish_reason</c> is always written: null until the finish chunk.</summary>
public sealed record ChatChunkChoice(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("delta")] ChatDelta Delta,
    [property: JsonPropertyName("finish_reason")] string? FinishReason);

public sealed record ChatDelta(
    [property: JsonPropertyName("role"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role = null,
    [property: JsonPropertyName("content"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content = null,
    [property: JsonPropertyName("tool_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ChatToolCallChunk>? ToolCalls = null)
{
    public static ChatDelta Empty { get; } = new();
}

/// <summary>The OpenAI error envelope.</summary>
public sealed record ErrorEnvelope([property: JsonPropertyName("error")] ErrorBody Error)
{
    public static ErrorEnvelope From(ChatError error) => new(new ErrorBody(error.Message, error.Type, error.Code));
}

public sealed record ErrorBody(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("code"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Code = null);

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(ErrorEnvelope))]
public sealed partial class WireJsonContext : JsonSerializerContext;

/// <summary>
/// The serializer context for everything the gateway writes. Non-ASCII text goes out as UTF-8, as
/// OpenAI sends it, instead of \uXXXX escapes (the default encoder escapes for HTML embedding, which
/// JSON and SSE responses do not need).
/// </summary>
public static class WireJson
{
    public static WireJsonContext Context { get; } =
        new(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    // A thread's buffer outgrowing this is given up after use rather than kept for the thread's life.
    private const int MaxKeptScratchBytes = 64 * 1024;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_scratch;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>
    /// The context for serializing into a writer of our own (<see cref="Write"/>): without an encoder in
    /// its options, so System.Text.Json takes the source generator's fast path (straight writer calls, no
    /// metadata walk; an encoder in the options turns it off). The writer brings the escaping.
    /// </summary>
    public static WireJsonContext WriterContext => WireJsonContext.Default;

    /// <summary>
    /// Serializes <paramref name="value"/> and appends the UTF-8 JSON to <paramref name="output"/>
    /// (see <see cref="SerializeToThreadBuffer"/>).
    /// </summary>
    public static void Write<T>(IBufferWriter<byte> output, T value, JsonTypeInfo<T> typeInfo) =>
        output.Write(SerializeToThreadBuffer(value, typeInfo));

    /// <summary>
    /// Serializes <paramref name="value"/> (escaped as <see cref="Context"/> escapes: non-ASCII text as
    /// UTF-8) into a buffer this thread reuses call after call: the span is valid until the thread's next
    /// call, so copy it before any await. Pass <see cref="WriterContext"/>'s type info for the fast path.
    /// Why not a writer on the destination: a <see cref="Utf8JsonWriter"/> asks its output for 4 KB at a
    /// time, which an SSE answer's buffers then keep for as long as the stream is open; and a writer and
    /// buffer per answer cost allocations per request.
    /// </summary>
    public static ReadOnlySpan<byte> SerializeToThreadBuffer<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        var scratch = t_scratch ??= new ArrayBufferWriter<byte>(1024);
        var writer = t_writer ??= new Utf8JsonWriter(scratch, new JsonWriterOptions { Encoder = Context.Options.Encoder });
        scratch.ResetWrittenCount();
        writer.Reset(scratch);
        try
        {
            JsonSerializer.Serialize(writer, value, typeInfo);
            writer.Flush();
        }
        catch
        {
            DropScratch();
            throw;
        }
        // A big answer's buffer is handed out once more, then let go rather than kept for the thread's life.
        if (scratch.Capacity > MaxKeptScratchBytes) DropScratch();
        return scratch.WrittenSpan;
    }

    private static void DropScratch()
    {
        t_scratch = null;
        t_writer = null;
    }
}
