using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §6: the body limit, malformed JSON, and the empty body.</summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class RequestBodyTests(ConformanceGateway gateway)
{
    private const int Limit = 20 * 1024 * 1024;

    [Fact]
    public async Task A_body_of_20_MiB_and_1_byte_is_413_from_its_Content_Length()
    {
        using var client = gateway.Client();
        using var content = new ByteArrayContent(new byte[Limit + 1]);

        using var response = await client.PostAsync(Http.Completions, content);

        await Http.AssertJsonBodyAsync(response, HttpStatusCode.RequestEntityTooLarge, Http.PayloadTooLargeBody);
    }

    [Fact]
    public async Task A_chunked_body_is_413_as_soon_as_it_passes_20_MiB()
    {
        using var client = gateway.Client();
        using var content = new ChunkedContent(Encoding.UTF8.GetBytes(PaddedTo(Http.UserSays("hi"), Limit + 1)));

        using var response = await client.PostAsync(Http.Completions, content);

        Assert.Null(response.RequestMessage!.Content!.Headers.ContentLength);
        await Http.AssertJsonBodyAsync(response, HttpStatusCode.RequestEntityTooLarge, Http.PayloadTooLargeBody);
    }

    [Fact]
    public async Task A_body_of_exactly_20_MiB_is_read()
    {
        using var client = gateway.Client();
        var body = PaddedTo(Http.UserSays("just fits"), Limit);

        using var response = await client.PostAsync(Http.Completions, new StringContent(body));

        Assert.Equal(Http.EchoOf("just fits"), await Http.ReplyAsync(response));
    }

    [Fact]
    public async Task A_message_of_1_2_MB_passes_whole()
    {
        using var client = gateway.Client();
        var message = string.Concat(Enumerable.Repeat("0123456789", 120_000));

        using var response = await client.PostAsync(Http.Completions, new StringContent(Http.UserSays(message)));

        Assert.Equal(Http.EchoOf(message), await Http.ReplyAsync(response));
    }

    [Fact]
    public async Task An_empty_body_counts_as_an_empty_object()
    {
        using var client = gateway.Client();

        using var response = await client.PostAsync(Http.Completions, new ByteArrayContent([]));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, "Missing user message in `messages`.", "invalid_request_error");
    }

    public static TheoryData<string> MalformedJson =>
    [
        "{", "{\"messages\":}", "nul", "[1,]", "\"unterminated", "{} {}", "{'model':'openclaw'}", "{\"a\":1,}", "\u00ff", "{\"a\":01}",
        new string('[', 100) + new string(']', 100),
    ];

    [Theory]
    [MemberData(nameof(MalformedJson))]
    public async Task Malformed_JSON_is_400_with_the_parser_s_message(string body)
    {
        using var client = gateway.Client();
        var expected = Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(Encoding.UTF8.GetBytes(body))).Message;

        using var response = await client.PostAsync(Http.Completions, new StringContent(body));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, expected, "invalid_request_error");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("42")]
    [InlineData("\"hi\"")]
    public async Task A_body_that_is_not_an_object_is_400(string body)
    {
        using var client = gateway.Client();

        using var response = await client.PostAsync(Http.Completions, new StringContent(body));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, "The request body must be a JSON object.", "invalid_request_error");
    }

    [Fact]
    public async Task Text_that_is_not_valid_UTF_8_is_400_naming_the_field()
    {
        using var client = gateway.Client();
        byte[] body = [.. "{\"messages\":[{\"role\":\"user\",\"content\":\""u8, 0xC3, 0x28, .. "\"}]}"u8];

        using var response = await client.PostAsync(Http.Completions, new ByteArrayContent(body));

        await Http.AssertErrorAsync(response, HttpStatusCode.BadRequest, "`messages[0].content` is not valid Unicode text.", "invalid_request_error");
    }

    [Fact]
    public async Task A_broken_chunked_body_is_400_in_the_envelope()
    {
        var (status, headers, body) = await RawAsync(
            $"POST {Http.Completions} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");

        Assert.Equal(400, status);
        Assert.Contains("Content-Type: application/json; charset=utf-8", headers);
        Http.AssertEnvelope(body);
        Assert.Contains("\"type\":\"invalid_request_error\"", body);
    }

    /// <summary>
    /// A limit of the server, not a choice: Kestrel refuses a request whose headers it cannot parse
    /// before the app sees it, with an empty 400, and that answer cannot be customised.
    /// </summary>
    [Fact]
    public async Task A_Content_Length_that_is_not_a_number_is_refused_by_the_server_itself()
    {
        var (status, headers, _) = await RawAsync(
            $"POST {Http.Completions} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\nContent-Length: abc\r\n\r\n{{}}");

        Assert.Equal(400, status);
        Assert.Contains("Connection: close", headers);
    }

    /// <summary>The body padded with spaces after the JSON to exactly <paramref name="length"/> bytes.</summary>
    private static string PaddedTo(string json, int length) => json + new string(' ', length - Encoding.UTF8.GetByteCount(json));

    /// <summary>Sends raw bytes over TCP and reads the answer (status, header block, body) until the server ends it.</summary>
    private async Task<(int Status, string Headers, string Body)> RawAsync(string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(gateway.Server.BaseAddress.Host, gateway.Server.BaseAddress.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new StringBuilder();
        var buffer = new byte[8192];
        while (true)
        {
            var text = received.ToString();
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 && Complete(text, end)) return (int.Parse(text[9..12]), text[..end], Decode(text[..end], text[(end + 4)..]));
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0) return (int.Parse(text[9..12]), text[..end], Decode(text[..end], text[(end + 4)..]));
            received.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
    }

    private static bool Complete(string text, int headerEnd)
    {
        var headers = text[..headerEnd];
        var body = text[(headerEnd + 4)..];
        if (headers.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)) return body.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
        var length = headers.Split("\r\n").FirstOrDefault(line => line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        return length is not null && body.Length >= int.Parse(length["Content-Length:".Length..].Trim());
    }

    private static string Decode(string headers, string body)
    {
        if (!headers.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)) return body;
        var decoded = new StringBuilder();
        var position = 0;
        while (true)
        {
            var lineEnd = body.IndexOf("\r\n", position, StringComparison.Ordinal);
            var size = Convert.ToInt32(body[position..lineEnd], 16);
            if (size == 0) return decoded.ToString();
            decoded.Append(body, lineEnd + 2, size);
            position = lineEnd + 2 + size + 2;
        }
    }

    /// <summary>Content of unknown length, so the client sends it chunked.</summary>
    private sealed class ChunkedContent(byte[] bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (var offset = 0; offset < bytes.Length; offset += 64 * 1024)
                await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(64 * 1024, bytes.Length - offset)));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
