using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>
/// A session queues the turns that arrive while one runs, up to <c>gateway.sessions.max-queued-turns</c>
/// (64 in akka.hocon); one more is refused with 429 and <c>Retry-After</c>, and the queued ones still run,
/// one at a time, each after the one the session took before it.
/// </summary>
public sealed partial class SessionQueueLimitTests : IAsyncLifetime
{
    private const int MaxQueuedTurns = 64;

    // main answers at once; silent sends its role chunk and then nothing for 30 s, so the first turn runs
    // until its client hangs up. A user's session is per agent, so the test names its session with the
    // session-key header instead, which one session keeps across agents.
    private const string Config = """
        {
          gateway: { port: 0, auth: { token: 'test-token' }, http: { endpoints: { chatCompletions: { enabled: true } } } },
          agents: { list: [ { id: 'main', default: true }, { id: 'silent', builtin: { pieceDelayMs: 30000, pieces: 2 } } ] },
        }
        """;

    private GatewayServer _server = null!;

    public async Task InitializeAsync() => _server = await GatewayServer.StartAsync(Config);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_turn_beyond_the_session_queue_gets_429_and_the_queued_ones_still_run_in_order()
    {
        var session = $"queue-limit-{Guid.NewGuid():N}";
        // Closes its connection when a response is dropped (no drain), so the gateway sees the client leave.
        using var dropping = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
        {
            BaseAddress = _server.BaseAddress,
            Timeout = TimeSpan.FromSeconds(30),
            DefaultRequestHeaders = { Authorization = new("Bearer", GatewayServer.Token) },
        };
        using var client = _server.CreateClient();

        // 1 running: its role chunk is in, so it holds the session until its client leaves.
        var running = await ChatApi.StartStreamAsync(dropping, ChatApi.Body("hold on", model: "openclaw/silent"), session);
        var runningEvents = ChatApi.EventsAsync(running).GetAsyncEnumerator();
        Assert.True(await Eventually.WithinAsync(runningEvents.MoveNextAsync().AsTask(), TimeSpan.FromSeconds(5), "the running turn's role chunk"));

        // 64 queued + 1 more, all at once: whichever reaches the session last finds the queue full.
        var sent = Enumerable.Range(0, MaxQueuedTurns + 1)
            .Select(i => SendAsync(client, ChatApi.Body($"queued {i}"), session))
            .ToList();
        var refused = await Eventually.WithinAsync(Task.WhenAny(sent), TimeSpan.FromSeconds(10), "the turn beyond the queue's bound");
        var (status, retryAfter, contentType, body) = await refused;
        Assert.True(status == HttpStatusCode.TooManyRequests, $"{(int)status}: {body}");
        Assert.Equal("1", retryAfter);
        Assert.StartsWith("application/json", contentType);
        using (var envelope = JsonDocument.Parse(body))
        {
            var error = envelope.RootElement.GetProperty("error");
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), body);
        }
        var queued = sent.Where(task => task != refused).ToList();
        Assert.Equal(MaxQueuedTurns, queued.Count);
        Assert.DoesNotContain(queued, task => task.IsCompleted);

        // The running turn's client leaves: its run is cancelled and the queue drains.
        await runningEvents.DisposeAsync();
        running.Dispose();
        var answers = await Eventually.WithinAsync(Task.WhenAll(queued), TimeSpan.FromSeconds(10), "the queued turns");

        // Each queued turn saw every turn before it, the last of them being the one just before: they ran
        // one at a time, none lost or run twice. (The cancelled turn said nothing, so it is not remembered.)
        // Sent all at once, they reach the session in no known order, so this checks the chain, not the
        // send order: HTTP shows no sign of a turn having been queued to wait for before sending the next.
        var byPosition = new SortedDictionary<int, (string Message, string? Previous)>();
        foreach (var (answerStatus, _, _, answerBody) in answers)
        {
            Assert.True(answerStatus == HttpStatusCode.OK, $"{(int)answerStatus}: {answerBody}");
            var (position, message, previous) = Parse(ReplyText(answerBody));
            Assert.True(byPosition.TryAdd(position, (message, previous)), $"two turns ran after {position} earlier ones");
        }
        Assert.Equal(Enumerable.Range(0, MaxQueuedTurns), byPosition.Keys);
        for (var position = 1; position < MaxQueuedTurns; position++)
            Assert.Equal(byPosition[position - 1].Message, byPosition[position].Previous);

        // The session is free again and remembers them all.
        var next = await ChatApi.CompleteAsync(client, ChatApi.Body("after the queue"), session);
        Assert.EndsWith(
            $"This session holds {MaxQueuedTurns} earlier turn(s); the last one said: \"{byPosition[MaxQueuedTurns - 1].Message}\".", next);
        await Eventually.TrueAsync(() => _server.Metrics.ActiveRuns == 0, TimeSpan.FromSeconds(5), "a run is left over");
    }

    private static async Task<(HttpStatusCode Status, string? RetryAfter, string? ContentType, string Body)> SendAsync(
        HttpClient client, System.Text.Json.Nodes.JsonObject body, string session)
    {
        using var request = ChatApi.Request(body, session);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? string.Join(",", values) : null;
        return (response.StatusCode, retryAfter, response.Content.Headers.ContentType?.ToString(), text);
    }

    private static string ReplyText(string completion)
    {
        using var json = JsonDocument.Parse(completion);
        return json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    /// <summary>How many turns the session held before this one, this one's message, and the last earlier one's.</summary>
    private static (int EarlierTurns, string Message, string? Previous) Parse(string reply)
    {
        var match = ReplyPattern().Match(reply);
        Assert.True(match.Success, reply);
        var message = match.Groups["message"].Value;
        return match.Groups["count"].Success
            ? (int.Parse(match.Groups["count"].Value), message, match.Groups["previous"].Value)
            : (0, message, null);
    }

    [GeneratedRegex("""^Built-in agent 'main' received: "(?<message>[^"]*)"\. (This session holds no earlier turns\.|This session holds (?<count>\d+) earlier turn\(s\); the last one said: "(?<previous>[^"]*)"\.)$""")]
    private static partial Regex ReplyPattern();
}
