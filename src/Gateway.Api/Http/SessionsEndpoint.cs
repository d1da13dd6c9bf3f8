using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Hosting;
using Gateway.Actors.Sessions;

namespace Gateway.Api.Http;

/// <summary>
/// <c>DELETE /v1/sessions/{sessionKey}</c>: forgets one session, behind the same switch and auth as chat
/// completions. Its history is cleared and a durable session's events and snapshots are deleted from the
/// store. The key is the <c>x-openclaw-session-key</c> a client sent, or, for the OpenAI <c>user</c> field,
/// <c>agent:&lt;agentId&gt;:openai-user:&lt;user in lower case&gt;</c> (URL-encode it). Answers
/// <c>{"id", "object": "session.deleted", "deleted": true}</c>, or 503 when the store cannot delete now.
/// </summary>
public static class SessionsEndpoint
{
    public const string Path = "/v1/sessions";

    private static readonly TimeSpan DeleteTimeout = TimeSpan.FromSeconds(30);

    public static IEndpointRouteBuilder MapSessions(this IEndpointRouteBuilder app)
    {
        app.Map(Path + "/{**key}", DeleteAsync);
        return app;
    }

    private static async Task<IResult> DeleteAsync(HttpContext context, ApiGate gate, IRequiredActor<SessionRouter> sessions, string? key)
    {
        if (gate.Admit(context, HttpMethods.Delete) is { } refused) return refused;
        // The server decodes every escape in the path but %2F, which would change its segments.
        var sessionKey = key?.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase).Trim();
        if (string.IsNullOrEmpty(sessionKey)) return ApiErrors.InvalidRequest("Name the session to delete: DELETE /v1/sessions/{sessionKey}.");
        HistoryForgotten forgotten;
        try
        {
            forgotten = await sessions.ActorRef.Ask<HistoryForgotten>(new ForgetSession(sessionKey), DeleteTimeout, context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The caller left; the delete goes on without them.
            return Results.Empty;
        }
        catch (AskTimeoutException)
        {
            return ApiErrors.From(SessionStoreErrors.Unavailable);
        }
        return forgotten.Deleted
            ? TypedResults.Json(new SessionDeleted(sessionKey, true), ApiJson.Context.SessionDeleted)
            : ApiErrors.From(SessionStoreErrors.Unavailable);
    }
}

public sealed record SessionDeleted(
    [property: JsonPropertyName("id"), JsonPropertyOrder(-2)] string Id,
    [property: JsonPropertyName("deleted")] bool Deleted)
{
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
    public string Object => "session.deleted";
}
