using System.Net;

namespace Gateway.IntegrationTests.Conformance;

/// <summary>Spec §9: <c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>, behind the same auth.</summary>
[Collection(SharedGatewayCollection.Name)]
public sealed class ModelsListTests(ConformanceGateway gateway)
{
    private static string Card(string id) => $$"""{"id":"{{id}}","object":"model","created":0,"owned_by":"openclaw"}""";

    [Fact]
    public async Task The_list_holds_openclaw_openclaw_default_and_one_model_per_agent()
    {
        using var client = gateway.Client();

        using var response = await client.GetAsync(Http.Models);

        await Http.AssertJsonBodyAsync(response, HttpStatusCode.OK,
            $$"""{"object":"list","data":[{{Card("openclaw")}},{{Card("openclaw/default")}},{{Card("openclaw/main")}},{{Card("openclaw/beta")}}]}""");
    }

    [Theory]
    [InlineData("openclaw", "openclaw")]
    [InlineData("openclaw%2Fdefault", "openclaw/default")]
    [InlineData("openclaw%2fbeta", "openclaw/beta")]
    [InlineData("openclaw/main", "openclaw/main")]
    [InlineData("OpenClaw%2FBeta", "openclaw/beta")]
    public async Task One_model_is_found_by_its_id_raw_or_URL_encoded(string path, string id)
    {
        using var client = gateway.Client();

        using var response = await client.GetAsync($"{Http.Models}/{path}");

        await Http.AssertJsonBodyAsync(response, HttpStatusCode.OK, Card(id));
    }

    [Theory]
    [InlineData("gpt-4o", "gpt-4o")]
    [InlineData("openclaw%2Fghost", "openclaw/ghost")]
    [InlineData("openclaw/main/extra", "openclaw/main/extra")]
    public async Task An_unknown_model_is_404_in_the_envelope(string path, string id)
    {
        using var client = gateway.Client();

        using var response = await client.GetAsync($"{Http.Models}/{path}");

        await Http.AssertErrorAsync(response, HttpStatusCode.NotFound, $"The model '{id}' does not exist.", "invalid_request_error", "model_not_found");
    }

    [Theory]
    [InlineData(Http.Models, null)]
    [InlineData(Http.Models, "Bearer wrong")]
    [InlineData(Http.Models + "/openclaw", null)]
    [InlineData(Http.Models + "/nope", "Bearer wrong")]
    public async Task The_models_need_the_same_auth(string path, string? authorization)
    {
        using var client = gateway.Client(token: null);

        using var response = await client.SendAsync(Http.Request(HttpMethod.Get, path, authorization: authorization));

        await Http.AssertJsonBodyAsync(response, HttpStatusCode.Unauthorized, Http.UnauthorizedBody);
    }

    [Theory]
    [InlineData("POST", Http.Models)]
    [InlineData("DELETE", Http.Models + "/openclaw")]
    public async Task Only_GET_is_allowed(string method, string path)
    {
        using var client = gateway.Client(token: null);

        using var response = await client.SendAsync(Http.Request(new HttpMethod(method), path));

        await Http.AssertPlainTextAsync(response, HttpStatusCode.MethodNotAllowed, "Method Not Allowed");
        Assert.Equal(["GET"], response.Content.Headers.Allow);
    }
}
