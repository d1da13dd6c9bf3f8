using System.Runtime.CompilerServices;

namespace Gateway.Agents;

/// <summary>
/// A deterministic agent that needs no network and no key: it answers with what it received (the
/// current message and what the session remembers), in several pieces, with an optional delay
/// before each piece so it can stand in for a real model in demos and benchmarks.
/// </summary>
public sealed class BuiltInAgent : IAgentRuntime
{
    public IAsyncEnumerable<AgentEvent> Run(AgentTurn turn) => new Answer(turn);

    /// <summary>
    /// A run's answer, made when it is first read. A C# iterator made on one thread and read on
    /// another (the lane's) copies itself on first read; made on the reading thread, it does not.
    /// </summary>
    private sealed class Answer(AgentTurn turn) : IAsyncEnumerable<AgentEvent>
    {
        public IAsyncEnumerator<AgentEvent> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            var reply = Reply(turn);
            var settings = turn.Agent.BuiltIn;
            var replyChars = settings.ReplyChars ?? reply.Length;
            var usage = new UsageReport(new TokenUsage(
                TokenEstimator.Estimate(turn.PromptCharacters), (int)Math.Min(int.MaxValue, TokenEstimator.Estimate(replyChars))));
            return Paced(reply, settings, usage, cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
    }

    /// <summary>
    /// The pieces (made one at a time, as they are read), then the usage, then the end. With a delay,
    /// a piece goes out no sooner than one delay after the start and after the previous piece (as a
    /// model's tokens would come); without one, every step completes at once.
    /// </summary>
    private static async IAsyncEnumerable<AgentEvent> Paced(
        string reply, BuiltInAgentSettings settings, UsageReport usage, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        // Made here, on the thread that reads them (see Answer).
        var pieces = settings.ReplyChars is { } padded
            ? PaddedPieces(reply, padded, settings.Pieces ?? (int)Math.Min(int.MaxValue, (padded + 1023) / 1024))
            : Split(reply, settings.Pieces);
        var delayMs = (long)settings.PieceDelay.TotalMilliseconds;
        var nextPieceAt = Environment.TickCount64 + delayMs;
        foreach (var piece in pieces)
        {
            if (delayMs > 0)
            {
                var wait = nextPieceAt - Environment.TickCount64;
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait), cancellation).ConfigureAwait(false);
                nextPieceAt = Environment.TickCount64 + delayMs;
            }
            yield return new TextDelta(piece);
        }
        yield return usage;
        yield return new RunEnded();
    }

    public static string Reply(AgentTurn turn)
    {
        var earlierTurns = turn.History.Count(entry => entry.Role == ConversationRole.User);
        var lastUserText = turn.History.LastOrDefault(entry => entry.Role == ConversationRole.User)?.Text;
        var memory = lastUserText is null
            ? "This session holds no earlier turns."
            : $"This session holds {earlierTurns} earlier turn(s); the last one said: \"{lastUserText}\".";
        return $"Built-in agent '{turn.Agent.Id}' received: \"{turn.Input.Message}\". {memory}";
    }

    /// <summary>The reply repeated to <paramref name="totalChars"/>, in <paramref name="count"/> slices made one at a time.</summary>
    public static IEnumerable<string> PaddedPieces(string reply, long totalChars, int count)
    {
        var source = reply + " ";
        var position = 0L;
        for (var i = 0; i < count; i++)
        {
            var end = totalChars * (i + 1) / count;
            // Made in place: one string per piece and no builder (a long answer makes many pieces).
            yield return string.Create((int)(end - position), (source, position), static (chars, state) =>
            {
                var (text, from) = state;
                for (var j = 0; j < chars.Length; j++) chars[j] = text[(int)((from + j) % text.Length)];
            });
            position = end;
        }
    }

    /// <summary>
    /// Splits text into pieces that join back to it: words by default, else <paramref name="count"/>
    /// near-equal slices. Made one at a time, as they are read: a paced answer holds only the piece it
    /// is on, not all of them, while it waits.
    /// </summary>
    public static IEnumerable<string> Split(string text, int? count)
    {
        if (text.Length == 0) yield break;
        if (count is not { } n || n <= 0)
        {
            var start = 0;
            for (var i = 1; i <= text.Length; i++)
            {
                if (i != text.Length && text[i] != ' ') continue;
                yield return text[start..i];
                start = i;
            }
            yield break;
        }
        n = Math.Min(n, text.Length);
        for (var i = 0; i < n; i++)
        {
            var from = (int)((long)text.Length * i / n);
            var to = (int)((long)text.Length * (i + 1) / n);
            yield return text[from..to];
        }
    }
}

/// <summary>Serves every agent with the built-in agent. Upstream model providers come with their own resolver.</summary>
public sealed class BuiltInAgentResolver : IAgentRuntimeResolver
{
    private readonly BuiltInAgent _builtIn = new();

    public IAgentRuntime Resolve(AgentDefinition agent) => _builtIn;
}
