using Gateway.Streams.Wire;

namespace Gateway.Streams.Lanes;

/// <summary>
/// Where a streamed answer's parts go: defined here, implemented by whoever serves the answer (the HTTP
/// side writes them as Server-Sent Events). The lane calls it on its own thread, one call at a time:
/// <see cref="TryWrite"/> for each part of a burst, then <see cref="FlushAsync"/>, whose wait for the
/// reader is the backpressure (the lane takes no more parts, so the agent is not read, until it is over).
/// A writer rather than a stream the HTTP side pulls: the lane writes in place, with no buffer, channel
/// or thread hop per stream in between (an open stream holds only its run and this writer).
/// </summary>
public interface IAnswerWriter
{
    /// <summary>Appends one part without sending it; false when the reader has gone.</summary>
    bool TryWrite(ChatStreamPart part);

    /// <summary>Sends what was written; completes when the reader has room again, with false when it has gone.</summary>
    ValueTask<bool> FlushAsync();

    /// <summary>Ends a flush that waits for the reader at once (the run was stopped; any thread).</summary>
    void CancelPendingFlush();
}
