using System.Diagnostics;

namespace Gateway.Bench.Load;

/// <summary>Counts body bytes and keeps only the first few (to say what an error answer said).</summary>
public sealed class CountingSink : IBodySink
{
    private readonly byte[] _start = new byte[120];

    public long Bytes { get; private set; }

    /// <summary>The start of the body, as text.</summary>
    public string Start => System.Text.Encoding.UTF8.GetString(_start, 0, (int)Math.Min(Bytes, _start.Length));

    public void Reset() => Bytes = 0;

    public void OnBody(ReadOnlySpan<byte> data)
    {
        if (Bytes < _start.Length) data[..(int)Math.Min(data.Length, _start.Length - Bytes)].CopyTo(_start.AsSpan((int)Bytes));
        Bytes += data.Length;
    }
}

/// <summary>Keeps the whole body (capturing the gateway's answer for the baseline).</summary>
public sealed class CapturingSink : IBodySink
{
    private readonly MemoryStream _body = new();

    public byte[] Body => _body.ToArray();

    public void OnBody(ReadOnlySpan<byte> data) => _body.Write(data);
}

/// <summary>
/// Splits an SSE body into events (a blank line ends one) as it arrives, and notes when the first
/// event (the role chunk) and the second (the first content chunk) arrived, whether an in-band
/// error event came, and whether the stream ended with <c>data: [DONE]</c>. It keeps only the first
/// bytes of each event, so it costs the same whatever the events hold.
/// </summary>
public sealed class SseScanner : IBodySink
{
    private const int HeadBytes = 16;
    private readonly byte[] _head = new byte[HeadBytes];
    private int _position;
    private bool _lastWasNewline;

    public int Events { get; private set; }

    public long Bytes { get; private set; }

    public bool Done { get; private set; }

    public bool ErrorEvent { get; private set; }

    /// <summary>Stopwatch timestamp of the first event, or 0.</summary>
    public long FirstEventAt { get; private set; }

    /// <summary>Stopwatch timestamp of the second event (the first content chunk), or 0.</summary>
    public long SecondEventAt { get; private set; }

    /// <summary>Called (on the reading thread) after each event.</summary>
    public Action<SseScanner>? EventReceived { get; set; }

    public void Reset()
    {
        _position = 0;
        _lastWasNewline = false;
        Events = 0;
        Bytes = 0;
        Done = false;
        ErrorEvent = false;
        FirstEventAt = 0;
        SecondEventAt = 0;
    }

    public void OnBody(ReadOnlySpan<byte> data)
    {
        Bytes += data.Length;
        while (!data.IsEmpty)
        {
            if (_position < HeadBytes)
            {
                var copy = Math.Min(HeadBytes - _position, data.Length);
                data[..copy].CopyTo(_head.AsSpan(_position));
            }
            var newline = data.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _position += data.Length;
                _lastWasNewline = false;
                return;
            }
            var blankLine = newline == 0 ? _lastWasNewline : data[newline - 1] == '\n';
            _position += newline + 1;
            data = data[(newline + 1)..];
            if (blankLine)
            {
                OnEvent();
                _position = 0;
                _lastWasNewline = false;
            }
            else
            {
                _lastWasNewline = true;
            }
        }
    }

    private void OnEvent()
    {
        var now = Stopwatch.GetTimestamp();
        Events++;
        if (Events == 1) FirstEventAt = now;
        else if (Events == 2) SecondEventAt = now;
        var head = _head.AsSpan(0, Math.Min(_position, HeadBytes));
        if (head.StartsWith("data: [DONE]"u8)) Done = true;
        else if (head.StartsWith("data: {\"error\""u8)) ErrorEvent = true;
        EventReceived?.Invoke(this);
    }
}
