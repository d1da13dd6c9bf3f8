using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Bench.Load;

/// <summary>Receives a response body as it arrives (already de-chunked).</summary>
public interface IBodySink
{
    void OnBody(ReadOnlySpan<byte> data);
}

/// <summary>The head of a response: its status, and whether the connection may be reused.</summary>
public readonly record struct ResponseHead(int Status, bool KeepAlive, string? RawHead);

/// <summary>The server broke the HTTP/1.1 framing, or closed the connection mid-response.</summary>
public sealed class HttpFramingException(string message) : IOException(message);

/// <summary>
/// One keep-alive HTTP/1.1 connection over a raw socket: it writes prepared request bytes and parses
/// the response (status line, Content-Length or chunked body) into an <see cref="IBodySink"/>. The
/// load generator uses it instead of HttpClient so that the client costs little CPU next to the
/// server under test on the same two cores (both targets get the same client, byte for byte).
/// </summary>
public sealed class HttpConnection : IDisposable
{
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();
    private readonly Socket _socket;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private Func<ValueTask>? _pace;

    private HttpConnection(Socket socket, int bufferSize)
    {
        _socket = socket;
        _buffer = new byte[bufferSize];
    }

    public static async Task<HttpConnection> OpenAsync(IPEndPoint endpoint, CancellationToken cancellation,
        int bufferSize = 16 * 1024, int? receiveBufferSize = null)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // Set before connecting, so the window the client advertises is small from the start.
            if (receiveBufferSize is { } size) socket.ReceiveBufferSize = size;
            await socket.ConnectAsync(endpoint, cancellation);
            return new HttpConnection(socket, bufferSize);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public int LocalPort => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    public async ValueTask SendAsync(ReadOnlyMemory<byte> request, CancellationToken cancellation)
    {
        while (!request.IsEmpty)
        {
            var sent = await _socket.SendAsync(request, SocketFlags.None, cancellation);
            request = request[sent..];
        }
    }

    /// <summary>Reads one whole response; the body goes to <paramref name="sink"/>.</summary>
    /// <param name="maxRead">At most this many bytes per socket read (the slow reader reads 1 KB at a time).</param>
    /// <param name="beforeRead">Awaited before each socket read of the body (pacing for the slow reader).</param>
    public async ValueTask<ResponseHead> ReadResponseAsync(IBodySink sink, CancellationToken cancellation,
        bool keepHead = false, int maxRead = int.MaxValue, Func<ValueTask>? beforeRead = null)
    {
        // Status line and headers.
        int headLength;
        while ((headLength = _buffer.AsSpan(_start, _end - _start).IndexOf(HeadEnd)) < 0)
        {
            if (!await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed before the response head");
        }
        var head = _buffer.AsSpan(_start, headLength + HeadEnd.Length);
        var (status, contentLength, chunked, keepAlive) = ParseHead(head);
        var rawHead = keepHead ? Encoding.ASCII.GetString(head) : null;
        _start += head.Length;
        // Every read of the body (chunk headers included) waits its turn when paced.
        _pace = beforeRead;
        try
        {
            if (chunked)
            {
                await ReadChunkedAsync(sink, maxRead, cancellation);
            }
            else if (contentLength is { } length)
            {
                var remaining = length;
                while (remaining > 0)
                {
                    if (_end == _start && !await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed inside the body");
                    var take = (int)Math.Min(remaining, _end - _start);
                    sink.OnBody(_buffer.AsSpan(_start, take));
                    _start += take;
                    remaining -= take;
                }
            }
            else
            {
                // No length, not chunked: the body runs to the end of the connection.
                keepAlive = false;
                while (true)
                {
                    if (_end > _start)
                    {
                        sink.OnBody(_buffer.AsSpan(_start, _end - _start));
                        _start = _end;
                    }
                    if (!await FillAsync(maxRead, cancellation)) break;
                }
            }
        }
        finally
        {
            _pace = null;
        }
        return new ResponseHead(status, keepAlive, rawHead);
    }

    private async ValueTask ReadChunkedAsync(IBodySink sink, int maxRead, CancellationToken cancellation)
    {
        while (true)
        {
            // chunk-size [; extensions] CRLF
            int lineEnd;
            while ((lineEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
            {
                if (!await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed inside a chunk header");
            }
            var sizeText = _buffer.AsSpan(_start, lineEnd);
            var semicolon = sizeText.IndexOf((byte)';');
            if (semicolon >= 0) sizeText = sizeText[..semicolon];
            if (!Utf8Parser.TryParse(sizeText, out long size, out var consumed, 'X') || consumed != sizeText.Length)
                throw new HttpFramingException("bad chunk size");
            _start += lineEnd + 2;
            if (size == 0)
            {
                // Trailers (none expected), then the empty line.
                while (true)
                {
                    while ((lineEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
                    {
                        if (!await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed inside the last chunk");
                    }
                    _start += lineEnd + 2;
                    if (lineEnd == 0) return;
                }
            }
            while (size > 0)
            {
                if (_end == _start && !await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed inside a chunk");
                var take = (int)Math.Min(size, _end - _start);
                sink.OnBody(_buffer.AsSpan(_start, take));
                _start += take;
                size -= take;
            }
            while (_end - _start < 2)
            {
                if (!await FillAsync(maxRead, cancellation)) throw new HttpFramingException("connection closed after a chunk");
            }
            if (_buffer[_start] != '\r' || _buffer[_start + 1] != '\n') throw new HttpFramingException("chunk not followed by CRLF");
            _start += 2;
        }
    }

    /// <summary>Reads more bytes after the unread ones; false when the peer closed the connection.</summary>
    private async ValueTask<bool> FillAsync(int maxRead, CancellationToken cancellation)
    {
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) throw new HttpFramingException("response head larger than the read buffer");
        if (_pace is not null) await _pace();
        var room = Math.Min(maxRead, _buffer.Length - _end);
        var read = await _socket.ReceiveAsync(_buffer.AsMemory(_end, room), SocketFlags.None, cancellation);
        _end += read;
        return read > 0;
    }

    private static (int Status, long? ContentLength, bool Chunked, bool KeepAlive) ParseHead(ReadOnlySpan<byte> head)
    {
        // "HTTP/1.1 200 OK"
        if (head.Length < 12 || !head.StartsWith("HTTP/1."u8) || !Utf8Parser.TryParse(head.Slice(9, 3), out int status, out _))
            throw new HttpFramingException("bad status line");
        long? contentLength = null;
        var chunked = false;
        var keepAlive = head[7] == '1';
        var lines = head[(head.IndexOf("\r\n"u8) + 2)..];
        while (lines.Length > 2)
        {
            var end = lines.IndexOf("\r\n"u8);
            var line = lines[..end];
            lines = lines[(end + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) continue;
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(name, "content-length"u8))
            {
                if (!Utf8Parser.TryParse(value, out long length, out _)) throw new HttpFramingException("bad content-length");
                contentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8))
            {
                chunked = Ascii.EqualsIgnoreCase(value, "chunked"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "connection"u8))
            {
                keepAlive = !Ascii.EqualsIgnoreCase(value, "close"u8);
            }
        }
        return (status, contentLength, chunked, keepAlive);
    }

    public void Dispose() => _socket.Dispose();
}
