using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Akka;
using Akka.Streams.Dsl;

namespace Gateway.Streams.Wire;

/// <summary>The two ends an answer can take: SSE items for a streamed answer, or one folded completion.</summary>
public static class ChatAnswerEnds
{
    /// <summary>The terminal SSE payload that OpenAI clients wait for.</summary>
    public const string DoneMarker = "[DONE]";

    /// <summary>The text the non-streamed answer carries when the agent said nothing.</summary>
    public const string EmptyAnswerText = "No response from OpenClaw.";

    /// <summary>Each part becomes one <c>data:</c> event (compact JSON, no event type), ready for TypedResults.ServerSentEvents.</summary>
    public static Flow<ChatStreamPart, SseItem<string>, NotUsed> ServerSentEvents(ChatAnswerHeader header) =>
        Flow.Create<ChatStreamPart>().Select(part => new SseItem<string>(FormatEvent(header, part)));

    /// <summary>The JSON (or <c>[DONE]</c>) a part reads as on the wire.</summary>
    public static string FormatEvent(ChatAnswerHeader header, ChatStreamPart part) => part switch
    {
        RolePart => Chunk(header, new ChatDelta(Role: "assistant", Content: ""), finishReason: null),
        ContentPart content => Chunk(header, new ChatDelta(Content: content.Text), finishReason: null),
        FinishPart finish => Chunk(header, ChatDelta.Empty, finish.FinishReason),
        UsagePart usage => JsonSerializer.Serialize(
            new ChatCompletionChunk(header.Id, header.Created, header.Model, [], ChatUsage.From(usage.Usage)),
            WireJson.Context.ChatCompletionChunk),
        ErrorPart error => JsonSerializer.Serialize(ErrorEnvelope.From(error.Error), WireJson.Context.ErrorEnvelope),
        DonePart => DoneMarker,
        _ => throw new ArgumentOutOfRangeException(nameof(part), part, "unknown stream part"),
    };

    /// <summary>
    /// Folds the parts into one <c>chat.completion</c>, or the error the run ended with. Holds only the
    /// reply text so far; materializes a fresh accumulator each run.
    /// </summary>
    public static Sink<ChatStreamPart, Task<ChatAnswer>> Completion(ChatAnswerHeader header) =>
        Flow.Create<ChatStreamPart>()
            .StatefulSelectMany(() =>
            {
                var fold = new CompletionFold(header);
                return (Func<ChatStreamPart, IEnumerable<ChatAnswer>>)(part => fold.Add(part) is { } answer ? [answer] : []);
            })
            .ToMaterialized(Sink.First<ChatAnswer>(), Keep.Right);

    private static string Chunk(ChatAnswerHeader header, ChatDelta delta, string? finishReason) =>
        JsonSerializer.Serialize(
            new ChatCompletionChunk(header.Id, header.Created, header.Model, [new ChatChunkChoice(0, delta, finishReason)]),
            WireJson.Context.ChatCompletionChunk);

    private sealed class CompletionFold(ChatAnswerHeader header)
    {
        private readonly StringBuilder _content = new();
        private string _finishReason = FinishReasons.Stop;
        private TokenUsage? _usage;
        private ErrorPart? _error;

        public ChatAnswer? Add(ChatStreamPart part)
        {
            switch (part)
            {
                case ContentPart content: _content.Append(content.Text); break;
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
            var text = _content.Length == 0 ? EmptyAnswerText : _content.ToString();
            var usage = _usage ?? new TokenUsage(0, TokenEstimator.Estimate(_content.Length));
            var completion = new ChatCompletion(header.Id, header.Created, header.Model,
                [new ChatCompletionChoice(0, new ChatMessageOut("assistant", text), _finishReason)],
                ChatUsage.From(usage));
            return new ChatAnswer(completion, null);
        }
    }
}

/// <summary>A folded answer: the completion, or the error the run ended with.</summary>
public sealed record ChatAnswer(ChatCompletion? Completion, ErrorPart? Error);
