using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests;

/// <summary>Bearer auth on the endpoint (spec §3).</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class AuthTests(DefaultGatewayFixture fixture)
{
    private const string UnauthorizedBody = """{"error":{"message":"Unauthorized","type":"unauthorized"}}""";

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token")]
    [InlineData("Bearer")]
    [InlineData("Basic dGVzdC10b2tlbg==")]
    [InlineData("test-token")]
    public async Task Missing_or_wrong_token_is_401_with_the_openai_error_body(string? authorization)
    {
        using var client = fixture.Server.CreateClient(token: null);
        using var request = ChatApi.Request(ChatApi.Body("let me in"));
        if (authorization is not null) request.Headers.TryAddWithoutValidation("Authorization", authorization);

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(UnauthorizedBody, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("bearer    test-token   ")]
    [InlineData("BEARER test-token")]
    [InlineData("  Bearer\ttest-token")]
    public async Task Bearer_scheme_is_case_insensitive_and_spaces_are_trimmed(string authorization)
    {
        using var client = fixture.Server.CreateClient(token: null);
        using var request = ChatApi.Request(ChatApi.Body("knock knock"));
        Assert.True(request.Headers.TryAddWithoutValidation("Authorization", authorization));

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
