using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using Gateway.Agents;

using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;

namespace Gateway.Providers;

/// <summary>
/// An agent backed by an upstream model that speaks the OpenAI Chat Completions protocol, called
/// through the official OpenAI SDK, always streaming. Token deltas become text deltas as they arrive
/// and are read only as fast as the run pulls them, so a slow client slows the upstream read (TCP
/// does the rest). A failure before the first token moves on to the next fallback model; after it,
/// the failure ends the stream (the client sees an error event). Ending the run early (client
/// gone, timeout) cancels the upstream request at once.
/// </summary>
public sealed class OpenAICompatibleAgent : IAgentRuntime
{
    private readonly IReadOnlyList<(ProviderClient Provider, ProviderModel Model)> _chain;
    private readonly ILogger _logger;

    /// <param name="chain">The primary model, then its fallbacks, in order.</param>
    public OpenAICompatibleAgent(IReadOnlyList<(ProviderClient Provider, ProviderModel Model)> chain, ILogger logger)
    {
        if (chain.Count == 0) throw new ArgumentException("An agent needs at least one model.", nameof(chain));
        _chain = chain;
        _logger = logger;
    }

    /// <summary>The lane cancels the enumerator's token and disposes it when the run ends early, which aborts an upstream call still running.</summary>
    public IAsyncEnumerable<AgentEvent> Run(AgentTurn turn) => RunAsync(turn);

    private async IAsyncEnumerable<AgentEvent> RunAsync(AgentTurn turn, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        Exception? lastFailure = null;
        foreach (var (provider, model) in _chain)
        {
            var attempt = new UpstreamAttempt(provider, model, turn, cancellation);
            await using (attempt)
            {
                var first = await attempt.FirstTokenAsync();
                if (first.Failure is { } failure)
                {
                    lastFailure = failure;
                    _logger.LogWarning(failure, "Model {Provider}/{Model} failed before its first token{Next}",
                        provider.Name, model.Id, ReferenceEquals(model, _chain[^1].Model) ? "" : "; trying the next fallback");
                    continue;
                }
                foreach (var agentEvent in first.Events) yield return agentEvent;
                while (await attempt.NextAsync() is { } events)
                {
                    foreach (var agentEvent in events) yield return agentEvent;
                }
                yield break;
            }
        }
        throw new AgentRunException(UpstreamErrors.Map(lastFailure!), lastFailure);
    }
}

/// <summary>One call to one upstream model: its timeouts, and the mapping of its updates to agent events.</summary>
internal sealed class UpstreamAttempt : IAsyncDisposable
{
    private readonly ProviderClient _provider;
    private readonly CancellationToken _runCancellation;
    private readonly CancellationTokenSource _timeout;
    private readonly IAsyncEnumerator<StreamingChatCompletionUpdate> _updates;
    private bool _ended;
    private string? _finishReason;

    public UpstreamAttempt(ProviderClient provider, ProviderModel model, AgentTurn turn, CancellationToken runCancellation)
    {
        _provider = provider;
        _runCancellation = runCancellation;
        _timeout = CancellationTokenSource.CreateLinkedTokenSource(runCancellation);
        var client = provider.ChatClient(model.Id);
        var (messages, options) = UpstreamRequest.Build(turn, model);
        _updates = client.CompleteChatStreamingAsync(messages, options, _timeout.Token).GetAsyncEnumerator(_timeout.Token);
    }

    /// <summary>Reads until the first token; a failure here (even a silent early end) is the caller's to fail over.</summary>
    public async Task<(IReadOnlyList<AgentEvent> Events, Exception? Failure)> FirstTokenAsync()
    {
        try
        {
            return (await NextEventsAsync(_provider.Timeouts.FirstToken) ?? [], null);
        }
        catch (Exception ex) when (!_runCancellation.IsCancellationRequested)
        {
            return ([], ex);
        }
    }

    /// <summary>The events of the next update(s); null after the end. Failures here end the run.</summary>
    public async Task<IReadOnlyList<AgentEvent>?> NextAsync()
    {
        try
        {
            return await NextEventsAsync(_provider.Timeouts.Idle);
        }
        catch (Exception ex) when (!_runCancellation.IsCancellationRequested && ex is not AgentRunException)
        {
            throw new AgentRunException(UpstreamErrors.Map(ex), ex);
        }
    }

    private async Task<IReadOnlyList<AgentEvent>?> NextEventsAsync(TimeSpan wait)
    {
        if (_ended) return null;
        var events = new List<AgentEvent>();
        while (events.Count == 0)
        {
            if (await MoveNextAsync(wait))
            {
                Translate(_updates.Current, events);
                continue;
            }
            // The end. An answer without a finish reason was cut off (the connection dropped mid-stream).
            _ended = true;
            if (_finishReason is null) throw new AgentRunException(new ChatError("The upstream model ended its answer early.", "api_error", null, 502));
            // The end is reported only now: usage comes after the finish chunk.
            events.Add(new RunEnded(_finishReason));
        }
        return events;
    }

    /// <summary>The timer runs only while waiting on the upstream, not while the client is slow to read.</summary>
    private async Task<bool> MoveNextAsync(TimeSpan limit)
    {
        _timeout.CancelAfter(limit);
        try
        {
            return await _updates.MoveNextAsync();
        }
        catch (OperationCanceledException ex) when (!_runCancellation.IsCancellationRequested)
        {
            throw new AgentRunException(UpstreamErrors.Timeout, ex);
        }
        finally
        {
            _timeout.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    private void Translate(StreamingChatCompletionUpdate update, List<AgentEvent> events)
    {
        foreach (var part in update.ContentUpdate)
        {
            if (part.Kind == ChatMessageContentPartKind.Text && !string.IsNullOrEmpty(part.Text)) events.Add(new TextDelta(part.Text));
        }
        foreach (var call in update.ToolCallUpdates)
        {
            // OpenAI opens a call with "arguments":"" beside its id and name; keep that shape.
            var arguments = call.FunctionArgumentsUpdate?.ToString() ?? (call.ToolCallId is null ? null : "");
            events.Add(new ToolCallDelta(call.Index, call.ToolCallId, call.FunctionName, arguments));
        }
        if (update.Usage is { } usage) events.Add(new UsageReport(new TokenUsage(usage.InputTokenCount, usage.OutputTokenCount)));
        if (update.FinishReason is { } finish)
        {
            _finishReason = finish switch
            {
                ChatFinishReason.ToolCalls or ChatFinishReason.FunctionCall => FinishReasons.ToolCalls,
                ChatFinishReason.Length => FinishReasons.Length,
                _ => FinishReasons.Stop,
            };
        }
    }

    public async ValueTask DisposeAsync()
    {
        _ended = true;
        // Disposing the enumerator closes the upstream response (and with it the connection's request).
        await _updates.DisposeAsync();
        _timeout.Dispose();
    }
}

/// <summary>An upstream provider's shared client: one pooled HTTP client, one OpenAI client per model.</summary>
public sealed class ProviderClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly OpenAIClient _client;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ChatClient> _chatClients = new();

    public ProviderClient(ProviderSettings settings, UpstreamConnections? connections = null)
    {
        connections ??= UpstreamConnections.Default;
        Name = settings.Name;
        Timeouts = settings.Timeouts;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = settings.Timeouts.Connect,
            // Re-resolve DNS now and then; drop idle connections before servers do.
            PooledConnectionLifetime = connections.Lifetime,
            PooledConnectionIdleTimeout = connections.IdleTimeout,
            AutomaticDecompression = System.Net.DecompressionMethods.All,
            // An answer abandoned midway closes its connection at once instead of being drained for
            // reuse, so the upstream sees the cancellation (and stops generating) immediately.
            MaxResponseDrainSize = 0,
        })
        {
            // Streams may be long; the first-token and idle timeouts guard them instead.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _client = new OpenAIClient(new ApiKeyCredential(settings.ApiKey ?? "none"), new OpenAIClientOptions
        {
            Endpoint = settings.BaseUrl,
            Transport = new HttpClientPipelineTransport(_http),
            // Failover to the next model is ours to decide; the SDK must not retry behind our back.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromDays(1),
        });
    }

    public string Name { get; }

    public UpstreamTimeouts Timeouts { get; }

    public ChatClient ChatClient(string model) => _chatClients.GetOrAdd(model, id => _client.GetChatClient(id));

    public void Dispose() => _http.Dispose();
}
