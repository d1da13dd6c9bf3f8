using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Probes answer without auth, so orchestrators can call them.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class HealthTests(DefaultGatewayFixture fixture)
{
    [Fact]
    public async Task Healthz_is_200_without_auth()
    {
        using var client = fixture.Server.CreateClient(token: null);

        using var response = await client.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_is_200_once_started()
    {
        using var client = fixture.Server.CreateClient(token: null);

        using var response = await client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
