using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Gateway.Streams;
using Gateway.Streams.Lanes;
using Gateway.Streams.Wire;

namespace Gateway.UnitTests.Streams;

/// <summary>
/// An agent the test drives: it says what the test scripts, waiting (a busy step) while the script is empty,
/// and records how far it got and how it was stopped.
/// </summary>
internal sealed class ScriptedAgent
{
    /// <summary>Makes a <see cref="ScriptedAgent"/> throw when it reaches this point of its script.</summary>
    public sealed record Throw(Exception Exception) : AgentEvent;

    private readonly Channel<AgentEvent> _script = Channel.CreateUnbounded<AgentEvent>();
    private readonly TaskCompletionSource _tokenCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _produced;

    public IAsyncEnumerable<AgentEvent> Events => Run();

    /// <summary>How many events the agent has handed out.</summary>
    public int Produced => Volatile.Read(ref _produced);

    /// <summary>Completes when the run's cancellation token fires.</summary>
    public Task TokenCancelled => _tokenCancelled.Task;

    /// <summary>Completes when the agent's enumerator has finished: ran out, threw, was cancelled, or was disposed.</summary>
    public Task Stopped => _stopped.Task;

    public void Say(params AgentEvent[] events)
    {
        foreach (var agentEvent in events) _script.Writer.TryWrite(agentEvent);
    }

    /// <summary>The agent's enumeration ends after what is already scripted.</summary>
    public void End() => _script.Writer.TryComplete();

    private async IAsyncEnumerable<AgentEvent> Run([EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var registration = cancellation.Register(() => _tokenCancelled.TrySetResult());
        try
        {
            while (await _script.Reader.WaitToReadAsync(cancellation))
            {
                while (_script.Reader.TryRead(out var agentEvent))
                {
                    if (agentEvent is Throw toThrow) throw toThrow.Exception;
                    Interlocked.Increment(ref _produced);
                    yield return agentEvent;
                }
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }
}

/// <summary>An agent that fails before it has an enumerator at all.</summary>
internal sealed class BrokenAgent(Exception failure) : IAsyncEnumerable<AgentEvent>
{
    public IAsyncEnumerator<AgentEvent> GetAsyncEnumerator(CancellationToken cancellationToken = default) => throw failure;
}

internal static class TestAgents
{
    /// <summary>An agent for specs of a stage that must never read it: reading it fails with <paramref name="failure"/>.</summary>
    public static async IAsyncEnumerable<AgentEvent> Unread(string failure)
    {
        await Task.CompletedTask;
        throw new InvalidOperationException(failure);
#pragma warning disable CS0162 // an iterator needs a yield
        yield break;
#pragma warning restore CS0162
    }
}

/// <summary>Reads a streamed answer's channel the way the HTTP writer does (each part as its event's data), within the test's time limit.</summary>
internal static class AnswerChannel
{
    /// <summary>The data of every event until the channel completes.</summary>
    public static async Task<List<string>> ReadAllDataAsync(this AnswerEvents events, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        var data = new List<string>();
        await foreach (var part in events.Parts.ReadAllAsync(timeout.Token))
            data.Add(ChatAnswerEnds.FormatEvent(events.Header, part));
        return data;
    }

    /// <summary>The data of the next event.</summary>
    public static async Task<string> ReadOneDataAsync(this AnswerEvents events, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        return ChatAnswerEnds.FormatEvent(events.Header, await events.Parts.ReadAsync(timeout.Token));
    }
}
