using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gateway.Agents;

namespace Gateway.Streams.Wire;

/// <summary>The two ends an answer can take: SSE items for a streamed answer, or one folded completion.</summary>
public static class ChatAnswerEnds
{
    /// <summary>The terminal SSE payload that OpenAI clients wait for.</summary>
    public const string DoneMarker = "[DONE]";

    /// <summary>The text the non-streamed answer carries when the agent said nothing.</summary>
    public const string EmptyAnswerText = "No response from OpenClaw.";

    /// <summary>The JSON (or <c>[DONE]</c>) a part reads as on the wire, as a string (for tests and logs).</summary>
    public static string FormatEvent(ChatAnswerHeader header, ChatStreamPart part)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        WriteEvent(buffer, header, part);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Writes the data of the part's <c>data:</c> event (compact JSON, or <c>[DONE]</c>) as UTF-8 into
    /// <paramref name="output"/>, with no string per event (<see cref="WireJson.Write"/>).
    /// </summary>
    public static void WriteEvent(IBufferWriter<byte> output, ChatAnswerHeader header, ChatStreamPart part)
    {
        switch (part)
        {
            case DonePart:
                output.Write("[DONE]"u8);
                break;
            case UsagePart usage:
                WireJson.Write(output, new ChatCompletionChunk(header.Id, header.Created, header.Model, [], ChatUsage.From(usage.Usage)),
                    WireJson.WriterContext.ChatCompletionChunk);
                break;
            case ErrorPart error:
                WireJson.Write(output, ErrorEnvelope.From(error.Error), WireJson.WriterContext.ErrorEnvelope);
                break;
            default:
                WireJson.Write(output, Chunk(header, part), WireJson.WriterContext.ChatCompletionChunk);
                break;
        }
    }

    private static ChatCompletionChunk Chunk(ChatAnswerHeader header, ChatStreamPart part)
    {
        var (delta, finishReason) = part switch
        {
            RolePart => (new ChatDelta(Role: "assistant", Content: ""), null),
            ContentPart content => (new ChatDelta(Content: content.Text), null),
            ToolCallPart { Delta: var call } => (new ChatDelta(ToolCalls:
                [new ChatToolCallChunk(call.Index, call.Id, call.Id is null ? null : "function", new ChatFunctionCallChunk(call.Name, call.ArgumentsDelta))]),
                (string?)null),
            FinishPart finish => (ChatDelta.Empty, finish.FinishReason),
            _ => throw new ArgumentOutOfRangeException(nameof(part), part, "unknown stream part"),
        };
        return new ChatCompletionChunk(header.Id, header.Created, header.Model, [new ChatChunkChoice(0, delta, finishReason)]);
    }

    /// <summary>
    /// Folds one run's parts into one <c>chat.completion</c>, or the error the run ended with; the answer
    /// comes back from the <see cref="DonePart"/>. Holds only the reply text so far.
    /// </summary>
    internal sealed class CompletionFold(ChatAnswerHeader header)
    {
        private readonly StringBuilder _content = new();
        private readonly SortedDictionary<int, (string? Id, string? Name, StringBuilder Arguments)> _toolCalls = [];
        private string _finishReason = FinishReasons.Stop;
        private TokenUsage? _usage;
        private ErrorPart? _error;

        public ChatAnswer? Add(ChatStreamPart part)
        {
            switch (part)
            {
                case ContentPart content: _content.Append(content.Text); break;
                case ToolCallPart { Delta: var call }:
                    if (!_toolCalls.TryGetValue(call.Index, out var known)) _toolCalls[call.Index] = known = (null, null, new StringBuilder());
                    _toolCalls[call.Index] = (known.Id ?? call.Id, known.Name ?? call.Name, known.Arguments.Append(call.ArgumentsDelta));
                    break;
                case FinishPart finish: _finishReason = finish.FinishReason; break;
                case UsagePart usage: _usage = usage.Usage; break;
                case ErrorPart error: _error = error; break;
                case DonePart: return Result();
            }
            return null;
        }

        private ChatAnswer Result()
        {
            if (_error is not null) return new ChatAnswer(null, _error);
            var toolCalls = _toolCalls.Count == 0 ? null : _toolCalls.Values
                .Select((call, index) => new ChatToolCall(call.Id ?? $"call_{index}", new ChatFunctionCall(call.Name ?? "", call.Arguments.ToString())))
                .ToList();
            // A model that only calls tools says nothing: content is null then, as OpenAI sends it.
            var text = _content.Length > 0 ? _content.ToString() : toolCalls is null ? EmptyAnswerText : null;
            var usage = _usage ?? new TokenUsage(0, TokenEstimator.Estimate(_content.Length));
            var completion = new ChatCompletion(header.Id, header.Created, header.Model,
                [new ChatCompletionChoice(0, new ChatMessageOut("assistant", text, toolCalls), _finishReason)],
                ChatUsage.From(usage));
            return new ChatAnswer(completion, null);
        }
    }
}

/// <summary>A folded answer: the completion, or the error the run ended with.</summary>
public sealed record ChatAnswer(ChatCompletion? Completion, ErrorPart? Error);
