using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Gateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Gateway.IntegrationTests.Providers;

/// <summary>An agent on a real OpenAI-compatible upstream (a Kestrel server on loopback).</summary>
public sealed class UpstreamProviderTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayServer _gateway = null!;
    private HttpClient _client = null!;
    private string _workspace = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _workspace = Directory.CreateTempSubdirectory("gateway-workspace-").FullName;
        await File.WriteAllTextAsync(Path.Combine(_workspace, "AGENTS.md"), "You are the test agent.");
        _gateway = await GatewayServer.StartAsync(Config(_upstream.BaseUrl, _workspace), extraArgs: ApiKeyVariable);
        _client = _gateway.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
        Directory.Delete(_workspace, recursive: true);
    }

    /// <summary>Stands in for the environment variable the config's apiKey refers to.</summary>
    private static readonly string[] ApiKeyVariable = ["--FAKE_API_KEY=sk-fake-key"];

    public static string Config(Uri upstream, string workspace) => $$"""
        {
          gateway: {
            port: 0,
            auth: { token: 'test-token' },
            http: { endpoints: { chatCompletions: { enabled: true } } },
          },
          models: {
            providers: {
              fake: {
                baseUrl: '{{upstream}}',
                apiKey: '${FAKE_API_KEY}',
                api: 'openai-completions',
                firstTokenTimeoutMs: 700,
                idleTimeoutMs: 2000,
                models: [ { id: 'm1', contextWindow: 100000, maxTokens: 512 }, { id: 'm2' } ],
              },
            },
          },
          agents: {
            list: [
              { id: 'main', default: true, workspace: '{{workspace}}', model: { primary: 'fake/m1', fallbacks: ['fake/m2'] } },
              { id: 'echo' },
            ],
          },
        }
        """;

    [Fact]
    public async Task The_session_history_is_sent_on_the_second_call_with_the_same_user_and_not_without_it()
    {
        await PostAsync(new { model = "openclaw", user = "ada", messages = new[] { new { role = "user", content = "first" } } });
        await PostAsync(new { model = "openclaw", user = "ada", messages = new[] { new { role = "user", content = "second" } } });
        await PostAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "stateless" } } });

        var requests = _upstream.Requests.ToArray();
        Assert.Equal(
            ["system: You are the test agent.", "user: first"],
            Messages(requests[0]));
        Assert.Equal(
            ["system: You are the test agent.", "user: first", "assistant: Hello from upstream", "user: second"],
            Messages(requests[1]));
        Assert.Equal(
            ["system: You are the test agent.", "user: stateless"],
            Messages(requests[2]));
    }

    [Fact]
    public async Task Request_system_text_follows_the_agents_own_instructions()
    {
        await PostAsync(new
        {
            model = "openclaw",
            messages = new object[] { new { role = "system", content = "Answer in French." }, new { role = "user", content = "hi" } },
        });

        Assert.Equal(["system: You are the test agent.\n\nAnswer in French.", "user: hi"], Messages(_upstream.Requests.Single()));
    }

    [Fact]
    public async Task Sampling_values_arrive_upstream()
    {
        await PostAsync(new
        {
            model = "openclaw",
            temperature = 0.3,
            top_p = 0.9,
            frequency_penalty = 0.5,
            presence_penalty = -0.5,
            seed = 42,
            max_tokens = 64,
            stop = new[] { "END" },
            messages = new[] { new { role = "user", content = "hi" } },
        });

        var body = _upstream.Requests.Single();
        Assert.Equal("m1", body["model"]!.GetValue<string>());
        Assert.True(body["stream"]!.GetValue<bool>());
        Assert.Equal(0.3, body["temperature"]!.GetValue<double>(), 3);
        Assert.Equal(0.9, body["top_p"]!.GetValue<double>(), 3);
        Assert.Equal(0.5, body["frequency_penalty"]!.GetValue<double>(), 3);
        Assert.Equal(-0.5, body["presence_penalty"]!.GetValue<double>(), 3);
        Assert.Equal(42, body["seed"]!.GetValue<long>());
        Assert.Equal(64, (body["max_completion_tokens"] ?? body["max_tokens"])!.GetValue<int>());
        Assert.Equal("END", body["stop"]!.AsArray().Single()!.GetValue<string>());
    }

    [Fact]
    public async Task The_models_output_cap_is_sent_when_the_client_sets_none()
    {
        await PostAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        var body = _upstream.Requests.Single();
        Assert.Equal(512, (body["max_completion_tokens"] ?? body["max_tokens"])!.GetValue<int>());
    }

    [Fact]
    public async Task Upstream_usage_becomes_the_answers_usage()
    {
        _upstream.Enqueue(new FakeReply(["a", "b"], Usage: (123, 45)));

        var answer = await PostAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal("ab", answer["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(123, answer["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(45, answer["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal(168, answer["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_fallback_model_answers_when_the_primary_returns_500()
    {
        _upstream.Enqueue(new FakeReply(Status: 500), FakeReply.Text("from", " fallback"));

        var answer = await PostAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal("from fallback", answer["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(["m1", "m2"], _upstream.Requests.Select(request => request["model"]!.GetValue<string>()));
    }

    [Fact]
    public async Task An_upstream_429_becomes_a_429_with_Retry_After()
    {
        _upstream.Enqueue(new FakeReply(Status: 429, RetryAfter: "7"), new FakeReply(Status: 429, RetryAfter: "7"));

        using var response = await SendAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("7", response.Headers.GetValues("Retry-After").Single());
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("rate_limit_error", error["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Upstream_auth_failure_becomes_an_authentication_error()
    {
        _upstream.Enqueue(new FakeReply(Status: 401), new FakeReply(Status: 403));

        using var response = await SendAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("authentication_error", error["type"]!.GetValue<string>());
        Assert.DoesNotContain("fake failure", error["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Upstream_5xx_on_every_model_becomes_a_502()
    {
        _upstream.Enqueue(new FakeReply(Status: 503), new FakeReply(Status: 500));

        using var response = await SendAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("api_error", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_stalled_upstream_hits_the_first_token_timeout()
    {
        _upstream.Enqueue(new FakeReply(["late"], StallFirst: TimeSpan.FromSeconds(20)), new FakeReply(["late"], StallFirst: TimeSpan.FromSeconds(20)));
        var started = DateTime.UtcNow;

        using var response = await SendAsync(new { model = "openclaw", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the timeout should fire long before the upstream answers");
        Assert.Equal("timeout", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_failure_after_the_first_token_is_an_error_event_in_the_stream()
    {
        _upstream.Enqueue(new FakeReply(["one", "two", "three"], FailAfterPieces: 2));

        var events = await StreamEventsAsync(new { model = "openclaw", stream = true, messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Contains(events, data => data.Contains("\"content\":\"two\""));
        Assert.Contains(events, data => data.StartsWith("{\"error\":", StringComparison.Ordinal));
        Assert.DoesNotContain(events, data => data.Contains("\"finish_reason\":\"stop\""));
        Assert.Equal("[DONE]", events[^1]);
        Assert.Single(_upstream.Requests); // no failover once tokens flowed
    }

    [Fact]
    public async Task A_client_disconnect_closes_the_upstream_request_within_a_second()
    {
        _upstream.Enqueue(new FakeReply(Enumerable.Range(0, 100).Select(i => $"piece{i} ").ToArray(), PieceDelay: TimeSpan.FromMilliseconds(100)));
        // A client that really goes away: HttpClient would otherwise drain the rest of the answer
        // (up to 2 s) on Dispose, to reuse the connection.
        using var leaving = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = _gateway.BaseAddress };
        leaving.DefaultRequestHeaders.Authorization = _client.DefaultRequestHeaders.Authorization;
        using var request = Request(new { model = "openclaw", stream = true, messages = new[] { new { role = "user", content = "hi" } } });
        var response = await leaving.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line && !line.Contains("piece0")) { }

        response.Dispose();

        await Eventually.TrueAsync(() => _upstream.Aborted == 1, TimeSpan.FromSeconds(1), "the upstream request was not aborted");
        await Eventually.TrueAsync(() => _gateway.Metrics.ActiveRuns == 0, TimeSpan.FromSeconds(2), "the run is still active");
    }

    [Theory]
    [InlineData(false, 0)] // waiting for a non-streamed answer while tokens flow
    [InlineData(false, 600)] // before the first token
    [InlineData(true, 600)] // streamed, before the first token
    public async Task A_client_that_gives_up_closes_the_upstream_request_within_a_second(bool stream, int stallMs)
    {
        _upstream.Enqueue(new FakeReply(Enumerable.Range(0, 100).Select(i => $"piece{i} ").ToArray(),
            StallFirst: TimeSpan.FromMilliseconds(stallMs), PieceDelay: TimeSpan.FromMilliseconds(100)));
        using var giveUp = new CancellationTokenSource();
        using var request = Request(new { model = "openclaw", stream, messages = new[] { new { role = "user", content = "hi" } } });

        var call = Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, giveUp.Token);
            await response.Content.ReadAsStringAsync(giveUp.Token);
        });
        // Gives up a moment after the upstream has the request (a fixed delay from the start raced a cold
        // start: a client that leaves before the upstream call is made leaves nothing to abort).
        await Eventually.TrueAsync(() => !_upstream.Requests.IsEmpty, TimeSpan.FromSeconds(10), "the upstream never got the request");
        giveUp.CancelAfter(TimeSpan.FromMilliseconds(300));
        await call;

        await Eventually.TrueAsync(() => _upstream.Aborted == 1, TimeSpan.FromSeconds(1), "the upstream request was not aborted");
        await Eventually.TrueAsync(() => _gateway.Metrics.ActiveRuns == 0, TimeSpan.FromSeconds(2), "the run is still active");
    }

    [Fact]
    public async Task A_slow_reader_pauses_the_upstream_instead_of_buffering_its_output()
    {
        // 100 MB of answer. What may fill while nobody reads: the kernel's socket buffers on both
        // connections (several MB each on loopback), Kestrel's pipes, and the run's 16-item channel.
        const int pieces = 25_000;
        var piece = new string('x', 4096);
        _upstream.Enqueue(new FakeReply(Enumerable.Repeat(piece, pieces).ToArray()));
        using var request = Request(new { model = "openclaw", stream = true, messages = new[] { new { role = "user", content = "hi" } } });
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        // Read one event, then stop reading for a while: the upstream can only fill the buffers on the way.
        await reader.ReadLineAsync();
        await Eventually.TrueAsync(() => _upstream.BytesWritten > 0, TimeSpan.FromSeconds(5), "the upstream never wrote");
        var plateau = await Eventually.StableAsync(() => _upstream.BytesWritten, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));

        var total = pieces * (piece.Length + 100L);
        Assert.True(plateau < total / 3, $"the upstream wrote {plateau:N0} of {total:N0} bytes while nobody read");
        Assert.Equal(0, _upstream.Completed);
    }

    [Fact]
    public async Task An_agent_without_a_model_keeps_the_built_in_agent()
    {
        var answer = await PostAsync(new { model = "openclaw:echo", messages = new[] { new { role = "user", content = "hi" } } });

        Assert.StartsWith("Built-in agent 'echo'", answer["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Empty(_upstream.Requests);
    }

    [Theory]
    [InlineData("nope/m1", "unknown provider 'nope'")]
    [InlineData("fake/m9", "provider 'fake' has no model 'm9'")]
    [InlineData("just-a-model", "is not a model reference")]
    public async Task A_config_naming_an_unknown_provider_or_model_is_refused_at_start(string model, string problem)
    {
        var config = Config(_upstream.BaseUrl, _workspace).Replace("model: { primary: 'fake/m1', fallbacks: ['fake/m2'] }", $"model: '{model}'");

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayServer.StartAsync(config, extraArgs: ApiKeyVariable));

        Assert.Contains("agents.list[0].model", error.Message);
        Assert.Contains(problem, error.Message);
    }

    private static List<string> Messages(JsonObject request) =>
        request["messages"]!.AsArray()
            .Select(message => $"{message!["role"]!.GetValue<string>()}: {Content(message["content"]!)}")
            .ToList();

    // The SDK may send content as a string or as an array of text parts.
    private static string Content(JsonNode content) => content is JsonArray parts
        ? string.Concat(parts.Select(part => part!["text"]!.GetValue<string>()))
        : content.GetValue<string>();

    private HttpRequestMessage Request(object body) =>
        new(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };

    private Task<HttpResponseMessage> SendAsync(object body) => _client.SendAsync(Request(body));

    private async Task<JsonObject> PostAsync(object body)
    {
        using var response = await SendAsync(body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<List<string>> StreamEventsAsync(object body)
    {
        using var response = await SendAsync(body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(block => block["data: ".Length..]).ToList();
    }
}
