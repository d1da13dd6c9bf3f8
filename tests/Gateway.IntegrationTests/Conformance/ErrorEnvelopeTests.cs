using System.Net;
using Gateway.IntegrationTests.Infrastructure;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>
/// Spec §7: every error on <c>/v1</c> is in the OpenAI envelope, including those ASP.NET raises, and
/// an internal failure never shows its details.
/// </summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class ErrorEnvelopeTests(ConformanceGateway gateway)
{
    [Fact]
    public async Task An_unhandled_exception_is_a_500_internal_error_that_leaks_nothing()
    {
        using var client = gateway.Client();

        using var response = await client.GetAsync(ConformanceGateway.ThrowingPath);

        await Http.AssertJsonBodyAsync(response, HttpStatusCode.InternalServerError, Http.InternalErrorBody);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
    }

    [Fact]
    public async Task Outside_v1_an_unmatched_path_is_a_plain_404()
    {
        using var client = gateway.Client();

        using var response = await client.GetAsync("/no/such/page");

        await Http.AssertPlainTextAsync(response, HttpStatusCode.NotFound, "Not Found");
    }

    public static TheoryData<string, string?, string> Errors => new()
    {
        { "POST", GatewayServer.Token, """{"messages":[]}""" },
        { "POST", null, Http.UserSays("hi") },
        { "POST", GatewayServer.Token, "{broken" },
        { "POST", GatewayServer.Token, Http.UserSays("hi", "gpt-4o") },
        { "GET", GatewayServer.Token, "" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public async Task Refusals_on_v1_carry_the_envelope_and_nothing_else(string method, string? token, string body)
    {
        using var client = gateway.Client(token);
        var path = method == "GET" ? Http.Models + "/missing" : Http.Completions;

        using var response = await client.SendAsync(Http.Request(new HttpMethod(method), path, method == "GET" ? null : body));

        Assert.InRange((int)response.StatusCode, 400, 499);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Http.AssertEnvelope(await response.Content.ReadAsStringAsync());
    }
}
