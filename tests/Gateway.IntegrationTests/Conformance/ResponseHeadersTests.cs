using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §10: <c>X-Content-Type-Options: nosniff</c> and <c>Referrer-Policy: no-referrer</c> on every response.</summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class ResponseHeadersTests(ConformanceGateway gateway)
{
    public static TheoryData<string, string, string, string?, int> Responses => new()
    {
        { "a completion", "POST", Http.Completions, Http.UserSays("hi"), 200 },
        { "a stream", "POST", Http.Completions, """{"stream":true,"messages":[{"role":"user","content":"hi"}]}""", 200 },
        { "the models", "GET", Http.Models, null, 200 },
        { "a health probe", "GET", "/healthz", null, 200 },
        { "a validation error", "POST", Http.Completions, """{"stream":"yes"}""", 400 },
        { "a 401", "POST", Http.Completions + "?anonymous", Http.UserSays("hi"), 401 },
        { "a 404", "POST", Http.Completions + "/", Http.UserSays("hi"), 404 },
        { "a 404 outside v1", "GET", "/nothing-here", null, 404 },
        { "a 405", "GET", Http.Completions, null, 405 },
        { "a 413", "POST", Http.Completions, new string(' ', 20 * 1024 * 1024 + 1), 413 },
        { "a 500", "GET", ConformanceGateway.ThrowingPath, null, 500 },
    };

    [Theory]
    [MemberData(nameof(Responses))]
    public async Task Every_response_has_nosniff_and_no_referrer(string what, string method, string path, string? body, int status)
    {
        using var client = gateway.Client(path.EndsWith("?anonymous", StringComparison.Ordinal) ? null : GatewayServer.Token);

        using var response = await client.SendAsync(Http.Request(new HttpMethod(method), path, body));
        await response.Content.ReadAsStringAsync();

        Assert.True(status == (int)response.StatusCode, $"{what}: {(int)response.StatusCode}");
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
    }
}
