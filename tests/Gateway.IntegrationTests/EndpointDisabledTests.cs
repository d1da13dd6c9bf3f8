using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>The endpoint is off unless the config turns it on (spec §1): a plain 404, no auth checked.</summary>
public sealed class EndpointDisabledTests(EndpointDisabledTests.Fixture fixture) : IClassFixture<EndpointDisabledTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        protected override string Config => """
            {
              gateway: { port: 0, auth: { mode: 'token', token: 'test-token' } },
              agents: { list: [ { id: 'main' } ] },
            }
            """;
    }

    [Theory]
    [InlineData("POST", GatewayServer.Token)]
    [InlineData("POST", null)]
    [InlineData("GET", null)]
    public async Task Endpoint_is_off_by_default_with_a_plain_404(string method, string? token)
    {
        using var client = fixture.Server.CreateClient(token);
        using var request = ChatApi.Request(ChatApi.Body("anyone there?"));
        request.Method = new HttpMethod(method);
        if (method == "GET") request.Content = null;

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Not Found", await response.Content.ReadAsStringAsync());
    }
}
