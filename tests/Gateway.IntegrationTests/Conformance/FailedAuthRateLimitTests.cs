using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Spec §3, the failed-auth rate limit: wrong credentials (not missing ones) count per client address;
/// at <c>maxAttempts</c> the address is locked and everything from it gets 429 with an integer
/// <c>Retry-After</c>. Every test starts its own gateway, since the tests all come from 127.0.0.1.
/// </summary>
public sealed class FailedAuthRateLimitTests
{
    private const string Right = "Bearer test-token";
    private const string Wrong = "Bearer wrong-token";

    private static string Config(string rateLimit) => $$"""
        {
          gateway: {
            port: 0,
            auth: { mode: 'token', token: 'test-token', rateLimit: { {{rateLimit}} } },
            http: { endpoints: { chatCompletions: { enabled: true } } },
          },
        }
        """;

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string? authorization, HttpMethod? method = null) =>
        await client.SendAsync(Http.Request(method ?? HttpMethod.Post, Http.Completions, Http.UserSays("hi"), authorization));

    [Fact]
    public async Task Wrong_bearers_get_401_until_maxAttempts_then_everything_gets_429_with_an_integer_Retry_After()
    {
        await using var server = await GatewayServer.StartAsync(Config("maxAttempts: 3, windowMs: 60000, lockoutMs: 120000, exemptLoopback: false"));
        using var client = server.CreateClient(token: null);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            using var refused = await SendAsync(client, Wrong);
            await Http.AssertJsonBodyAsync(refused, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
        }

        foreach (var authorization in (string?[])[Wrong, Right, null])
        {
            using var locked = await SendAsync(client, authorization);
            await Http.AssertJsonBodyAsync(locked, HttpStatusCode.TooManyRequests, Http.RateLimitedBody);
            var retryAfter = Assert.Single(locked.Headers.GetValues("Retry-After"));
            Assert.Matches("^[0-9]+$", retryAfter);
            Assert.InRange(int.Parse(retryAfter), 1, 120);
        }
    }

    [Fact]
    public async Task The_method_is_checked_before_the_lock()
    {
        await using var server = await GatewayServer.StartAsync(Config("maxAttempts: 1, lockoutMs: 120000, exemptLoopback: false"));
        using var client = server.CreateClient(token: null);
        (await SendAsync(client, Wrong)).Dispose();

        using var get = await client.SendAsync(Http.Request(HttpMethod.Get, Http.Completions, authorization: Right));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
    }

    [Fact]
    public async Task Missing_credentials_never_count_toward_the_lock()
    {
        await using var server = await GatewayServer.StartAsync(Config("maxAttempts: 2, exemptLoopback: false"));
        using var client = server.CreateClient(token: null);

        foreach (var missing in (string?[])[null, null, null, "Bearer", "Bearer   ", "Basic abc", null])
        {
            using var refused = await SendAsync(client, missing);
            await Http.AssertJsonBodyAsync(refused, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
        }

        using var right = await SendAsync(client, Right);
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task A_success_resets_the_count()
    {
        await using var server = await GatewayServer.StartAsync(Config("maxAttempts: 3, exemptLoopback: false"));
        using var client = server.CreateClient(token: null);

        foreach (var (authorization, status) in (IEnumerable<(string, HttpStatusCode)>)[
            (Wrong, HttpStatusCode.Unauthorized), (Wrong, HttpStatusCode.Unauthorized), (Right, HttpStatusCode.OK),
            (Wrong, HttpStatusCode.Unauthorized), (Wrong, HttpStatusCode.Unauthorized), (Right, HttpStatusCode.OK),
            (Wrong, HttpStatusCode.Unauthorized), (Wrong, HttpStatusCode.Unauthorized), (Wrong, HttpStatusCode.Unauthorized),
            (Right, HttpStatusCode.TooManyRequests)])
        {
            using var response = await SendAsync(client, authorization);
            Assert.Equal(status, response.StatusCode);
        }
    }

    [Fact]
    public async Task The_lock_ends_after_lockoutMs()
    {
        await using var server = await GatewayServer.StartAsync(Config("maxAttempts: 1, lockoutMs: 300, exemptLoopback: false"));
        using var client = server.CreateClient(token: null);
        (await SendAsync(client, Wrong)).Dispose();
        using (var locked = await SendAsync(client, Right)) Assert.Equal(HttpStatusCode.TooManyRequests, locked.StatusCode);

        // Polls with the right bearer, which does not extend the lock; until it ends, every answer is the lock's.
        await Eventually.TrueAsync(async () =>
        {
            using var response = await SendAsync(client, Right);
            if (response.StatusCode == HttpStatusCode.OK) return true;
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
            return false;
        }, TimeSpan.FromSeconds(10), "the address stayed locked");
    }

    [Theory]
    [InlineData("loopback is exempt unless exemptLoopback is false", "rateLimit: { maxAttempts: 2 }")]
    [InlineData("without a rateLimit section nothing is counted", "")]
    public async Task Loopback_is_never_locked_by_default(string rule, string rateLimit)
    {
        await using var server = await GatewayServer.StartAsync($$"""
            {
              gateway: {
                port: 0,
                auth: { mode: 'token', token: 'test-token', {{rateLimit}} },
                http: { endpoints: { chatCompletions: { enabled: true } } },
              },
            }
            """);
        using var client = server.CreateClient(token: null);

        for (var attempt = 0; attempt < 5; attempt++)
        {
            using var refused = await SendAsync(client, Wrong);
            Assert.True(refused.StatusCode == HttpStatusCode.Unauthorized, rule);
        }
        using var right = await SendAsync(client, Right);
        Assert.True(right.StatusCode == HttpStatusCode.OK, rule);
    }
}
