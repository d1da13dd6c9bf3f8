using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Agents;

namespace Gateway.Api.Http;

/// <summary>A message of the request, reduced to what the agent's input is built from.</summary>
/// <param name="ToolCalls">An assistant message's calls of client tools, if any.</param>
public sealed record ChatMessageIn(string Role, string Text, string? ToolCallId, IReadOnlyList<ToolCallRecord>? ToolCalls = null);

/// <summary>The fields of a chat completion request the gateway honours (spec §6), validated.</summary>
public sealed record ChatRequest(
    string Model,
    string? User,
    bool Stream,
    bool IncludeUsage,
    IReadOnlyList<ChatMessageIn> Messages,
    SamplingOptions Sampling,
    IReadOnlyList<FunctionTool>? Tools = null,
    ToolChoice? ToolChoice = null);

/// <summary>The request is malformed; <see cref="Exception.Message"/> is safe to send and names the field.</summary>
public sealed class RequestValidationException(string message) : Exception(message);

/// <summary>
/// Reads a request body into a <see cref="ChatRequest"/>. Wrong types and out-of-range values are
/// rejected with a message naming the field; unknown fields are ignored, as OpenAI clients send many.
/// An explicit <c>null</c> reads as an absent field, as the OpenAI API treats it.
/// </summary>
public static partial class ChatRequestParser
{
    public const string DefaultModel = "openclaw";
    public const int MaxStopSequences = 4;

    public static ChatRequest Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("The request body must be a JSON object.");
        var model = OptionalString(root, "model") ?? DefaultModel;
        var user = OptionalString(root, "user");
        var stream = OptionalBool(root, "stream") ?? false;
        var includeUsage = false;
        if (Present(root, "stream_options") is { } streamOptions)
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
            Stop: Stop(root),
            ResponseFormat: ResponseFormatOf(root));
        // Most requests set none: they share one instance rather than hold their own to the end of the run.
        if (sampling == SamplingOptions.None) sampling = SamplingOptions.None;
        var tools = Tools(root);
        return new ChatRequest(model, user, stream, includeUsage, messages, sampling, tools, ToolChoiceOf(root, tools));
    }

    private static IReadOnlyList<ChatMessageIn> Messages(JsonElement root)
    {
        if (Present(root, "messages") is not { } messages) return [];
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
            var toolCalls = role == "assistant" ? ToolCalls(message, $"{name}.tool_calls") : null;
            result.Add(new ChatMessageIn(role, text, string.IsNullOrWhiteSpace(toolCallId) ? null : toolCallId.Trim(), toolCalls));
        }
        return result;
    }

    /// <summary>An assistant message's <c>tool_calls</c>: function calls with an id, a name and JSON arguments.</summary>
    private static IReadOnlyList<ToolCallRecord>? ToolCalls(JsonElement message, string name)
    {
        if (Present(message, "tool_calls") is not { } calls) return null;
        if (calls.ValueKind != JsonValueKind.Array) throw Invalid($"`{name}` must be an array.");
        var result = new List<ToolCallRecord>();
        var index = 0;
        foreach (var call in calls.EnumerateArray())
        {
            var callName = $"{name}[{index++}]";
            if (call.ValueKind != JsonValueKind.Object) throw Invalid($"`{callName}` must be an object.");
            var id = OptionalString(call, "id", $"{callName}.id");
            if (Present(call, "function") is not { ValueKind: JsonValueKind.Object } function)
                throw Invalid($"`{callName}.function` must be an object.");
            var functionName = OptionalString(function, "name", $"{callName}.function.name");
            if (string.IsNullOrWhiteSpace(id) || string.IsNullOrWhiteSpace(functionName))
                throw Invalid($"`{callName}` needs an `id` and a `function.name`.");
            result.Add(new ToolCallRecord(id, functionName, OptionalString(function, "arguments", $"{callName}.function.arguments") ?? "{}"));
        }
        return result.Count == 0 ? null : result;
    }

    /// <summary>A string, or the <c>text</c>/<c>input_text</c> parts joined by newlines; trimmed. Other parts add no text.</summary>
    private static string ContentText(JsonElement message, string name)
    {
        if (Present(message, "content") is not { } content) return "";
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return StringOf(content, name).Trim();
            case JsonValueKind.Array:
                var texts = new List<string>();
                var index = 0;
                foreach (var part in content.EnumerateArray())
                {
                    var partName = $"{name}[{index++}]";
                    if (part.ValueKind != JsonValueKind.Object) throw Invalid($"`{partName}` must be an object.");
                    if (OptionalString(part, "type", $"{partName}.type") is not ("text" or "input_text")) continue;
                    texts.Add(OptionalString(part, "text", $"{partName}.text") ?? "");
                }
                return string.Join('\n', texts).Trim();
            default:
                throw Invalid($"`{name}` must be a string or an array of content parts.");
        }
    }

    private static IReadOnlyList<string>? Stop(JsonElement root)
    {
        const string Shape = "`stop` must be a string or an array of up to 4 non-empty strings.";
        if (Present(root, "stop") is not { } stop) return null;
        switch (stop.ValueKind)
        {
            case JsonValueKind.String:
                return StringOf(stop, "stop") is { Length: > 0 } single ? [single] : throw Invalid(Shape);
            case JsonValueKind.Array:
                var values = new List<string>();
                foreach (var item in stop.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String || StringOf(item, "stop") is not { Length: > 0 } text) throw Invalid(Shape);
                    values.Add(text);
                }
                if (values.Count > MaxStopSequences) throw Invalid(Shape);
                return values.Count == 0 ? null : values;
            default:
                throw Invalid(Shape);
        }
    }

    /// <summary><c>response_format</c>: <c>{"type":"text"}</c>, <c>{"type":"json_object"}</c> or <c>{"type":"json_schema","json_schema":{"name",…}}</c>.</summary>
    private static ResponseFormat? ResponseFormatOf(JsonElement root)
    {
        if (Present(root, "response_format") is not { } format) return null;
        if (format.ValueKind != JsonValueKind.Object) throw Invalid("`response_format` must be an object.");
        switch (OptionalString(format, "type", "response_format.type"))
        {
            case ResponseFormat.Text:
                return new ResponseFormat(ResponseFormat.Text);
            case ResponseFormat.JsonObject:
                return new ResponseFormat(ResponseFormat.JsonObject);
            case ResponseFormat.JsonSchema:
                const string Field = "response_format.json_schema";
                var schema = RequiredObject(format, "json_schema", Field);
                return new ResponseFormat(
                    ResponseFormat.JsonSchema,
                    RequiredName(schema, $"{Field}.name"),
                    OptionalObjectJson(schema, "schema", $"{Field}.schema"),
                    OptionalString(schema, "description", $"{Field}.description"),
                    OptionalBool(schema, "strict", $"{Field}.strict"));
            default:
                throw Invalid("`response_format.type` must be `text`, `json_object` or `json_schema`.");
        }
    }

    /// <summary><c>tools</c>: function tools only, each with a valid name.</summary>
    private static IReadOnlyList<FunctionTool>? Tools(JsonElement root)
    {
        if (Present(root, "tools") is not { } tools) return null;
        if (tools.ValueKind != JsonValueKind.Array) throw Invalid("`tools` must be an array.");
        var result = new List<FunctionTool>(tools.GetArrayLength());
        var index = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var name = $"tools[{index++}]";
            if (tool.ValueKind != JsonValueKind.Object) throw Invalid($"`{name}` must be an object.");
            if (OptionalString(tool, "type", $"{name}.type") != "function")
                throw Invalid($"`{name}.type` must be `function`: only function tools are supported.");
            var function = RequiredObject(tool, "function", $"{name}.function");
            result.Add(new FunctionTool(
                RequiredName(function, $"{name}.function.name"),
                OptionalString(function, "description", $"{name}.function.description"),
                OptionalObjectJson(function, "parameters", $"{name}.function.parameters"),
                OptionalBool(function, "strict", $"{name}.function.strict")));
        }
        return result.Count == 0 ? null : result;
    }

    /// <summary><c>tool_choice</c>: <c>none</c>, <c>auto</c>, <c>required</c> (needs tools) or one of the given functions.</summary>
    private static ToolChoice? ToolChoiceOf(JsonElement root, IReadOnlyList<FunctionTool>? tools)
    {
        if (Present(root, "tool_choice") is not { } choice) return null;
        if (choice.ValueKind == JsonValueKind.String)
        {
            return StringOf(choice, "tool_choice") switch
            {
                ToolChoice.AutoMode => ToolChoice.Auto,
                ToolChoice.NoneMode => ToolChoice.None,
                ToolChoice.RequiredMode when tools is null => throw Invalid("`tool_choice` is `required` but `tools` is empty."),
                ToolChoice.RequiredMode => ToolChoice.Required,
                _ => throw Invalid("`tool_choice` must be `none`, `auto`, `required` or {\"type\":\"function\",\"function\":{\"name\":…}}."),
            };
        }
        if (choice.ValueKind != JsonValueKind.Object) throw Invalid("`tool_choice` must be a string or an object.");
        if (OptionalString(choice, "type", "tool_choice.type") != "function") throw Invalid("`tool_choice.type` must be `function`.");
        var name = RequiredName(RequiredObject(choice, "function", "tool_choice.function"), "tool_choice.function.name");
        if (tools is null || !tools.Any(tool => tool.Name == name))
            throw Invalid($"`tool_choice` names the function '{name}', which is not in `tools`.");
        return ToolChoice.Function(name);
    }

    private static JsonElement? Present(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null) ? value : null;

    /// <summary>The string's text; an escaped lone surrogate or invalid UTF-8 is the client's error, not ours.</summary>
    private static string StringOf(JsonElement value, string name)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw Invalid($"`{name}` is not valid Unicode text.");
        }
    }

    private static string? OptionalString(JsonElement element, string name, string? displayName = null)
    {
        if (Present(element, name) is not { } value) return null;
        return value.ValueKind == JsonValueKind.String ? StringOf(value, displayName ?? name) : throw Invalid($"`{displayName ?? name}` must be a string.");
    }

    /// <summary>A function or schema name as OpenAI allows it: 1 to 64 letters, digits, '_' or '-'.</summary>
    private static string RequiredName(JsonElement element, string displayName)
    {
        var name = OptionalString(element, "name", displayName) ?? throw Invalid($"`{displayName}` is required.");
        return NamePattern().IsMatch(name) ? name : throw Invalid($"`{displayName}` must be 1 to 64 letters, digits, '_' or '-'.");
    }

    private static JsonElement RequiredObject(JsonElement element, string name, string displayName) =>
        Present(element, name) is { ValueKind: JsonValueKind.Object } value ? value : throw Invalid($"`{displayName}` must be an object.");

    /// <summary>An object passed on as the client wrote it (a JSON Schema), as raw JSON text.</summary>
    private static string? OptionalObjectJson(JsonElement element, string name, string displayName)
    {
        if (Present(element, name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Object) throw Invalid($"`{displayName}` must be an object.");
        try
        {
            return value.GetRawText();
        }
        catch (InvalidOperationException)
        {
            throw Invalid($"`{displayName}` is not valid Unicode text.");
        }
    }

    private static bool? OptionalBool(JsonElement element, string name, string? displayName = null)
    {
        if (Present(element, name) is not { } value) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid($"`{displayName ?? name}` must be a boolean."),
        };
    }

    private static double? OptionalNumber(JsonElement element, string name, double min, double max)
    {
        if (Present(element, name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
            throw Invalid($"`{name}` must be a number.");
        if (number < min || number > max) throw Invalid(FormattableString.Invariant($"`{name}` must be between {min} and {max}."));
        return number;
    }

    private static long? OptionalInteger(JsonElement element, string name)
    {
        if (Present(element, name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number)) throw Invalid($"`{name}` must be an integer.");
        return number;
    }

    private static int? PositiveInt(JsonElement element, string name)
    {
        if (Present(element, name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number) || number < 1)
            throw Invalid($"`{name}` must be a positive integer.");
        return number;
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();

    private static RequestValidationException Invalid(string message) => new(message);
}
