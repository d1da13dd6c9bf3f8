using System.Text.Json;
using Gateway.Actors.Agents;

namespace Gateway.Api.Http;

/// <summary>A message of the request, reduced to what the agent's input is built from.</summary>
public sealed record ChatMessageIn(string Role, string Text, string? ToolCallId);

/// <summary>The fields of a chat completion request the gateway honours (spec §6), validated.</summary>
public sealed record ChatRequest(
    string Model,
    string? User,
    bool Stream,
    bool IncludeUsage,
    IReadOnlyList<ChatMessageIn> Messages,
    SamplingOptions Sampling);

/// <summary>The request is malformed; <see cref="Exception.Message"/> is safe to send and names the field.</summary>
public sealed class RequestValidationException(string message) : Exception(message);

/// <summary>
/// Reads a request body into a <see cref="ChatRequest"/>. Wrong types and out-of-range values are
/// rejected with a message naming the field; unknown fields are ignored, as OpenAI clients send many.
/// </summary>
public static class ChatRequestParser
{
    public const string DefaultModel = "openclaw";

    public static ChatRequest Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("The request body must be a JSON object.");
        var model = OptionalString(root, "model") ?? DefaultModel;
        var user = OptionalString(root, "user");
        var stream = OptionalBool(root, "stream") ?? false;
        var includeUsage = false;
        if (Property(root, "stream_options") is { } streamOptions)
        {
            if (streamOptions.ValueKind != JsonValueKind.Object) throw Invalid("`stream_options` must be an object.");
            includeUsage = OptionalBool(streamOptions, "include_usage", "stream_options.include_usage") ?? false;
        }
        var messages = Messages(root);
        // Both caps are validated; max_completion_tokens wins when both are set.
        var maxTokens = PositiveInt(root, "max_tokens");
        var maxCompletionTokens = PositiveInt(root, "max_completion_tokens");
        var sampling = new SamplingOptions(
            Temperature: OptionalNumber(root, "temperature", 0, 2),
            TopP: OptionalNumber(root, "top_p", 0, 1),
            FrequencyPenalty: OptionalNumber(root, "frequency_penalty", -2, 2),
            PresencePenalty: OptionalNumber(root, "presence_penalty", -2, 2),
            Seed: OptionalInteger(root, "seed"),
            MaxTokens: maxCompletionTokens ?? maxTokens,
            Stop: Stop(root));
        return new ChatRequest(model, user, stream, includeUsage, messages, sampling);
    }

    private static IReadOnlyList<ChatMessageIn> Messages(JsonElement root)
    {
        if (Property(root, "messages") is not { } messages) return [];
        if (messages.ValueKind != JsonValueKind.Array) throw Invalid("`messages` must be an array.");
        var result = new List<ChatMessageIn>(messages.GetArrayLength());
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            var name = $"messages[{index++}]";
            if (message.ValueKind != JsonValueKind.Object) throw Invalid($"`{name}` must be an object.");
            var role = OptionalString(message, "role", $"{name}.role")?.Trim().ToLowerInvariant() ?? "";
            var text = ContentText(message, $"{name}.content");
            var toolCallId = OptionalString(message, "tool_call_id", $"{name}.tool_call_id");
            result.Add(new ChatMessageIn(role, text, string.IsNullOrWhiteSpace(toolCallId) ? null : toolCallId.Trim()));
        }
        return result;
    }

    /// <summary>A string, or the <c>text</c>/<c>input_text</c> parts joined by newlines; trimmed.</summary>
    private static string ContentText(JsonElement message, string name)
    {
        if (Property(message, "content") is not { } content) return "";
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return content.GetString()!.Trim();
            case JsonValueKind.Null:
                return "";
            case JsonValueKind.Array:
                var texts = new List<string>();
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object) continue;
                    var type = part.TryGetProperty("type", out var typeElement) && typeElement.ValueKind == JsonValueKind.String
                        ? typeElement.GetString() : null;
                    if (type is not ("text" or "input_text")) continue;
                    if (part.TryGetProperty("text", out var textElement) && textElement.ValueKind == JsonValueKind.String)
                        texts.Add(textElement.GetString()!);
                }
                return string.Join('\n', texts).Trim();
            default:
                throw Invalid($"`{name}` must be a string or an array of content parts.");
        }
    }

    private static IReadOnlyList<string>? Stop(JsonElement root)
    {
        if (Property(root, "stop") is not { } stop) return null;
        switch (stop.ValueKind)
        {
            case JsonValueKind.String:
                return stop.GetString() is { Length: > 0 } single ? [single] : throw Invalid("`stop` must not be empty.");
            case JsonValueKind.Array:
                var values = new List<string>();
                foreach (var item in stop.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } text)
                        throw Invalid("`stop` must be a string or an array of non-empty strings.");
                    values.Add(text);
                }
                if (values.Count > 4) throw Invalid("`stop` may hold at most 4 sequences.");
                return values;
            default:
                throw Invalid("`stop` must be a string or an array of non-empty strings.");
        }
    }

    private static JsonElement? Property(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Undefined ? value : null;

    private static string? OptionalString(JsonElement element, string name, string? displayName = null)
    {
        if (Property(element, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Invalid($"`{displayName ?? name}` must be a string.");
    }

    private static bool? OptionalBool(JsonElement element, string name, string? displayName = null)
    {
        if (Property(element, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid($"`{displayName ?? name}` must be a boolean."),
        };
    }

    private static double? OptionalNumber(JsonElement element, string name, double min, double max)
    {
        if (Property(element, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number) throw Invalid($"`{name}` must be a number.");
        var number = value.GetDouble();
        if (number < min || number > max) throw Invalid($"`{name}` must be between {min} and {max}.");
        return number;
    }

    private static long? OptionalInteger(JsonElement element, string name)
    {
        if (Property(element, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number)) throw Invalid($"`{name}` must be an integer.");
        return number;
    }

    private static int? PositiveInt(JsonElement element, string name)
    {
        if (Property(element, name) is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number) || number < 1)
            throw Invalid($"`{name}` must be a positive integer.");
        return number;
    }

    private static RequestValidationException Invalid(string message) => new(message);
}
