using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §1: where the endpoint lives, its switch, the exact path, and the order of checks.</summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class EndpointSwitchAndRoutingTests(ConformanceGateway gateway)
{
    public static TheoryData<string> OtherMethods => ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

    [Theory]
    [MemberData(nameof(OtherMethods))]
    public async Task A_method_other_than_POST_is_405_with_Allow_POST_before_auth(string method)
    {
        using var client = gateway.Client(token: null);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), Http.Completions));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(["POST"], response.Content.Headers.Allow);
        if (method != "HEAD") await Http.AssertPlainTextAsync(response, HttpStatusCode.MethodNotAllowed, "Method Not Allowed");
    }

    [Theory]
    [InlineData("POST", "/v1/chat/completions/")]
    [InlineData("POST", "/v1/chat/completions/extra")]
    [InlineData("POST", "/V1/Chat/Completions")]
    [InlineData("POST", "/chat/completions")]
    [InlineData("GET", "/v1/chat/completions/")]
    [InlineData("POST", "/v1/models/")]
    public async Task Only_the_exact_path_is_served_anything_else_is_a_plain_404(string method, string path)
    {
        using var client = gateway.Client();

        using var response = await client.SendAsync(Http.Request(new HttpMethod(method), path, method == "POST" ? Http.UserSays("hi") : null));

        await Http.AssertPlainTextAsync(response, HttpStatusCode.NotFound, "Not Found");
    }

    [Fact]
    public async Task Auth_is_checked_before_the_body_so_an_oversized_or_broken_body_without_a_token_is_401()
    {
        using var client = gateway.Client(token: null);

        using var broken = await client.SendAsync(Http.Request(HttpMethod.Post, Http.Completions, "{not json"));
        using var tooLarge = await client.SendAsync(Http.Request(HttpMethod.Post, Http.Completions, new string(' ', 21 * 1024 * 1024)));

        await Http.AssertJsonBodyAsync(broken, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
        await Http.AssertJsonBodyAsync(tooLarge, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
    }

    [Fact]
    public async Task The_body_is_checked_before_the_run_so_a_broken_body_never_reaches_an_agent()
    {
        using var client = gateway.Client();

        using var response = await client.SendAsync(Http.Request(HttpMethod.Post, Http.Completions, "{not json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}

/// <summary>Spec §1: off by default; off, every method on the path is a plain 404 and no auth is checked.</summary>
public sealed class EndpointOffTests(EndpointOffTests.Off gateway) : IClassFixture<EndpointOffTests.Off>
{
    /// <summary>No <c>chatCompletions.enabled</c>: the endpoint is off.</summary>
    public sealed class Off : ConformanceGateway
    {
        protected override string Config => """
            {
              gateway: { port: 0, auth: { mode: 'token', token: 'test-token' } },
              agents: { list: [ { id: 'main' } ] },
            }
            """;
    }

    public static TheoryData<string, string, string?> Requests => new()
    {
        { "POST", Http.Completions, GatewayServer.Token },
        { "POST", Http.Completions, null },
        { "POST", Http.Completions, "wrong" },
        { "GET", Http.Completions, null },
        { "PUT", Http.Completions, null },
        { "DELETE", Http.Completions, GatewayServer.Token },
        { "OPTIONS", Http.Completions, null },
        { "GET", Http.Models, GatewayServer.Token },
        { "GET", Http.Models, null },
        { "GET", Http.Models + "/openclaw", GatewayServer.Token },
        { "POST", Http.Models, null },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task Every_method_gets_a_plain_404_Not_Found_without_auth(string method, string path, string? token)
    {
        using var client = gateway.Client(token);

        using var response = await client.SendAsync(Http.Request(new HttpMethod(method), path, method == "POST" ? Http.UserSays("hi") : null));

        await Http.AssertPlainTextAsync(response, HttpStatusCode.NotFound, "Not Found");
    }

    [Fact]
    public async Task Explicitly_disabled_is_off_too()
    {
        await using var server = await GatewayServer.StartAsync("""
            {
              gateway: { port: 0, auth: { token: 'test-token' }, http: { endpoints: { chatCompletions: { enabled: false } } } },
            }
            """);
        using var client = server.CreateClient();

        using var response = await client.PostAsync(Http.Completions, new StringContent(Http.UserSays("hi")));

        await Http.AssertPlainTextAsync(response, HttpStatusCode.NotFound, "Not Found");
    }
}
