using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Gateway.Agents;
using Gateway.Api.Http;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// Spec §7 and §8: what each part reads as on the wire, how the HTTP side's writer sends them, and the folded,
/// non-streamed answer. Nothing here needs an actor system.
/// </summary>
public sealed class ChatAnswerEndsSpec
{
    private static readonly ChatAnswerHeader Header = new("chatcmpl_0f8e", 1767225600, "openclaw/main");

    private const string Prefix = """{"id":"chatcmpl_0f8e","object":"chat.completion.chunk","created":1767225600,"model":"openclaw/main","choices":""";

    // ---- FormatEvent: one whole event per part --------------------------------------------------

    [Fact]
    public void Role_part_is_an_assistant_delta_with_empty_content_and_a_null_finish_reason()
    {
        Assert.Equal(
            Prefix + """[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}""",
            ChatAnswerEnds.FormatEvent(Header, RolePart.Instance));
    }

    [Fact]
    public void Content_part_is_a_content_delta_with_finish_reason_null_present()
    {
        Assert.Equal(
            Prefix + """[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}""",
            ChatAnswerEnds.FormatEvent(Header, new ContentPart("Hello")));
    }

    [Fact]
    public void Content_part_text_is_escaped_as_json()
    {
        var json = ChatAnswerEnds.FormatEvent(Header, new ContentPart("say \"hi\"\nthen\\stop"));

        using var document = JsonDocument.Parse(json);
        Assert.Equal("say \"hi\"\nthen\\stop",
            document.RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.DoesNotContain('\n', json);
    }

    [Fact]
    public void Finish_part_has_an_empty_delta_and_its_reason()
    {
        Assert.Equal(
            Prefix + """[{"index":0,"delta":{},"finish_reason":"stop"}]}""",
            ChatAnswerEnds.FormatEvent(Header, new FinishPart(FinishReasons.Stop)));
        Assert.Equal(
            Prefix + """[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""",
            ChatAnswerEnds.FormatEvent(Header, new FinishPart(FinishReasons.ToolCalls)));
    }

    [Fact]
    public void Usage_part_has_no_choices_and_the_usage()
    {
        Assert.Equal(
            Prefix + """[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}""",
            ChatAnswerEnds.FormatEvent(Header, new UsagePart(new TokenUsage(12, 5))));
    }

    [Fact]
    public void Error_part_is_the_OpenAI_error_envelope_without_internal_details()
    {
        var part = new ErrorPart(ChatError.Internal, new InvalidOperationException("secret stack detail"));

        Assert.Equal(
            """{"error":{"message":"internal error","type":"api_error"}}""",
            ChatAnswerEnds.FormatEvent(Header, part));
    }

    [Fact]
    public void Error_part_with_a_code_carries_the_code()
    {
        var part = new ErrorPart(new ChatError("agent run timed out", "api_error", "timeout", 504), null);

        Assert.Equal(
            """{"error":{"message":"agent run timed out","type":"api_error","code":"timeout"}}""",
            ChatAnswerEnds.FormatEvent(Header, part));
    }

    [Fact]
    public void Done_part_is_the_DONE_marker()
    {
        Assert.Equal("[DONE]", ChatAnswerEnds.FormatEvent(Header, DonePart.Instance));
    }

    // ---- SseAnswerWriter: the HTTP side's writer of a streamed answer ---------------------------

    [Fact]
    public async Task Server_sent_events_are_plain_data_events_one_per_part_sent_only_when_flushed()
    {
        ChatStreamPart[] parts = [RolePart.Instance, new ContentPart("Grüße <b>&"), new FinishPart(FinishReasons.Stop), DonePart.Instance];
        var response = new Pipe();
        IAnswerWriter writer = new SseAnswerWriter(response.Writer, Header);

        foreach (var part in parts) Assert.True(writer.TryWrite(part));
        // Written, not sent: a burst leaves in one flush.
        Assert.False(response.Reader.TryRead(out _));
        Assert.True(await writer.FlushAsync());
        await response.Writer.CompleteAsync();

        using var wire = new MemoryStream();
        await response.Reader.CopyToAsync(wire);
        var text = Encoding.UTF8.GetString(wire.ToArray());
        // .NET's formatter, no "event:" line.
        Assert.Equal(string.Concat(parts.Select(part => $"data: {ChatAnswerEnds.FormatEvent(Header, part)}\n\n")), text);
        Assert.EndsWith("data: [DONE]\n\n", text);
        // Non-ASCII and HTML-special text goes out as it is, as OpenAI sends it (no \uXXXX escapes).
        Assert.Contains("\"content\":\"Grüße <b>&\"", text);
    }

    [Fact]
    public async Task The_sse_writers_flush_waits_for_the_reader_and_says_whether_it_is_still_there()
    {
        // A response that holds nothing its reader has not taken.
        var response = new Pipe(new PipeOptions(pauseWriterThreshold: 1, resumeWriterThreshold: 1));
        IAnswerWriter writer = new SseAnswerWriter(response.Writer, Header);

        Assert.True(writer.TryWrite(RolePart.Instance));
        var flush = writer.FlushAsync();
        Assert.False(flush.IsCompleted);
        // The reader takes it: the flush is over, and the reader is there.
        var read = await response.Reader.ReadAsync();
        response.Reader.AdvanceTo(read.Buffer.End);
        Assert.True(await flush);

        // A flush cut short (the run was stopped while it waited) does not count as taken.
        Assert.True(writer.TryWrite(new ContentPart("a")));
        flush = writer.FlushAsync();
        Assert.False(flush.IsCompleted);
        writer.CancelPendingFlush();
        Assert.False(await flush);

        // The reader gone (the connection closed): every flush says so.
        await response.Reader.CompleteAsync();
        writer.TryWrite(new ContentPart("b"));
        Assert.False(await writer.FlushAsync());
    }

    // ---- Completion: the folded answer ----------------------------------------------------------

    /// <summary>The fold a lane's completion run uses: the answer must come out at the done part, not before.</summary>
    private static Task<ChatAnswer> FoldAsync(params ChatStreamPart[] parts)
    {
        var fold = new ChatAnswerEnds.CompletionFold(Header);
        for (var i = 0; i < parts.Length - 1; i++) Assert.Null(fold.Add(parts[i]));
        return Task.FromResult(Assert.IsType<ChatAnswer>(fold.Add(parts[^1])));
    }

    private static string Json(ChatCompletion completion) => JsonSerializer.Serialize(completion, WireJsonContext.Default.ChatCompletion);

    [Fact]
    public async Task Completion_joins_the_content_and_carries_the_finish_reason_and_usage()
    {
        var answer = await FoldAsync(
            RolePart.Instance, new ContentPart("Hel"), new ContentPart("lo"), new FinishPart(FinishReasons.Stop),
            new UsagePart(new TokenUsage(12, 5)), DonePart.Instance);

        Assert.Null(answer.Error);
        Assert.Equal(
            """{"id":"chatcmpl_0f8e","object":"chat.completion","created":1767225600,"model":"openclaw/main","choices":["""
            + """{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":"""
            + """{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}""",
            Json(answer.Completion!));
    }

    [Fact]
    public async Task Completion_keeps_a_tool_calls_finish_reason()
    {
        var answer = await FoldAsync(
            RolePart.Instance, new FinishPart(FinishReasons.ToolCalls), new UsagePart(new TokenUsage(3, 0)), DonePart.Instance);

        Assert.Equal(FinishReasons.ToolCalls, Assert.Single(answer.Completion!.Choices).FinishReason);
    }

    [Fact]
    public async Task Completion_of_an_empty_answer_reads_No_response_from_OpenClaw()
    {
        var answer = await FoldAsync(
            RolePart.Instance, new FinishPart(FinishReasons.Stop), new UsagePart(new TokenUsage(4, 0)), DonePart.Instance);

        var choice = Assert.Single(answer.Completion!.Choices);
        Assert.Equal(new ChatMessageOut("assistant", "No response from OpenClaw."), choice.Message);
        Assert.Equal(ChatAnswerEnds.EmptyAnswerText, choice.Message.Content);
        Assert.Equal(new ChatUsage(4, 0, 4), answer.Completion.Usage);
    }

    [Fact]
    public async Task Completion_without_a_usage_part_estimates_the_completion_tokens()
    {
        var answer = await FoldAsync(RolePart.Instance, new ContentPart("Hello world"), new FinishPart(FinishReasons.Stop), DonePart.Instance);

        Assert.Equal(new ChatUsage(0, TokenEstimator.Estimate("Hello world"), TokenEstimator.Estimate("Hello world")), answer.Completion!.Usage);
    }

    [Fact]
    public async Task Completion_of_a_failed_run_is_the_error_and_no_completion()
    {
        var crash = new InvalidOperationException("boom");
        var error = new ErrorPart(ChatError.Internal, crash);

        var answer = await FoldAsync(RolePart.Instance, new ContentPart("partial"), error, DonePart.Instance);

        Assert.Equal(new ChatAnswer(null, error), answer);
        Assert.Same(crash, answer.Error!.Cause);
    }
}
