using System.Text.Json.Serialization;
using Gateway.Streams.Wire;

namespace Gateway.Api.Http;

/// <summary>
/// <c>GET /v1/models</c> and <c>GET /v1/models/{id}</c> (spec §9), behind the same switch, method
/// check and auth as chat completions: <c>openclaw</c>, <c>openclaw/default</c> and
/// <c>openclaw/&lt;id&gt;</c> for each configured agent.
/// </summary>
public static class ModelsEndpoint
{
    public const string Path = "/v1/models";
    public const string OwnedBy = "openclaw";

    public static IEndpointRouteBuilder MapModels(this IEndpointRouteBuilder app)
    {
        app.Map(Path, List);
        // A catch-all, so an id with a slash is found sent raw (openclaw/default) or encoded (openclaw%2Fdefault).
        app.Map(Path + "/{**id}", Get);
        return app;
    }

    /// <summary>The model ids, in the order listed.</summary>
    public static IReadOnlyList<string> Ids(AgentRouting routing) =>
        [ChatRequestParser.DefaultModel, "openclaw/default", .. routing.AgentIds.Select(id => $"openclaw/{id}")];

    private static IResult List(HttpContext context, ApiGate gate, AgentRouting routing) =>
        gate.Admit(context, HttpMethods.Get, Path)
        ?? TypedResults.Json(new ModelList([.. Ids(routing).Select(ModelCard.Of)]), ApiJson.Context.ModelList);

    private static IResult Get(HttpContext context, ApiGate gate, AgentRouting routing, string? id)
    {
        if (string.IsNullOrEmpty(id)) return ApiErrors.NotFound();
        if (gate.Admit(context, HttpMethods.Get) is { } refused) return refused;
        // The server decodes every escape in the path but %2F, which would change its segments.
        var wanted = id.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        return Ids(routing).FirstOrDefault(known => string.Equals(known, wanted, StringComparison.OrdinalIgnoreCase)) is { } found
            ? TypedResults.Json(ModelCard.Of(found), ApiJson.Context.ModelCard)
            : ApiErrors.Error(StatusCodes.Status404NotFound, $"The model '{wanted}' does not exist.", ApiErrors.InvalidRequestType, "model_not_found");
    }
}

public sealed record ModelList([property: JsonPropertyName("data")] IReadOnlyList<ModelCard> Data)
{
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

public sealed record ModelCard(
    [property: JsonPropertyName("id"), JsonPropertyOrder(-2)] string Id,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("owned_by")] string OwnedBy)
{
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
    public string Object => "model";

    public static ModelCard Of(string id) => new(id, 0, ModelsEndpoint.OwnedBy);
}

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(SessionDeleted))]
public sealed partial class ApiJsonContext : JsonSerializerContext;

/// <summary>The serializer context for what the HTTP layer writes itself, with the wire's options.</summary>
public static class ApiJson
{
    public static ApiJsonContext Context { get; } = new(new System.Text.Json.JsonSerializerOptions(WireJson.Context.Options));
}
