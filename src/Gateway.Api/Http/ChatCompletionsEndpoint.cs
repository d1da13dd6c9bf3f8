using System.Buffers;
using System.IO.Pipelines;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Gateway.Actors.Sessions;
using Gateway.Api.Configuration;
using Gateway.Streams;
using Gateway.Streams.Wire;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Http;

/// <summary>
/// <c>POST /v1/chat/completions</c>. Checks in the spec's order (path, method, auth, body), then turns
/// the request into a <see cref="StartTurn"/> for the session router and answers with what the run
/// hands back: one JSON completion, or its SSE events. Everything that can fail with a status code
/// happens before the first byte; after it, failures are in-band error events.
/// </summary>
public static class ChatCompletionsEndpoint
{
    public const string Path = "/v1/chat/completions";
    public const long MaxBodyBytes = 20 * 1024 * 1024;

    public static IEndpointRouteBuilder MapChatCompletions(this IEndpointRouteBuilder app)
    {
        // Every method is mapped so that "off" is a 404 and a wrong method a 405, in the spec's order.
        app.Map(Path, HandleAsync);
        return app;
    }

    private static async Task<IResult> HandleAsync(
        HttpContext context,
        IOptions<GatewayOptions> gateway,
        BearerAuth auth,
        AgentRouting routing,
        IRequiredActor<SessionRouter> sessions,
        IOptions<AgentsOptions> agents,
        ILoggerFactory loggers)
    {
        var request = context.Request;
        // Routing forgives a trailing slash; the contract does not.
        if (!gateway.Value.ChatCompletionsEnabled || request.Path.Value != Path) return PlainText(StatusCodes.Status404NotFound, "Not Found");
        if (!HttpMethods.IsPost(request.Method))
        {
            context.Response.Headers.Allow = "POST";
            return PlainText(StatusCodes.Status405MethodNotAllowed, "Method Not Allowed");
        }
        if (auth.Check(request) != AuthResult.Allowed) return ApiErrors.Unauthorized();

        JsonDocument document;
        try
        {
            if (await ReadJsonAsync(context) is not { } parsed) return ApiErrors.PayloadTooLarge();
            document = parsed;
        }
        catch (JsonException ex)
        {
            return ApiErrors.InvalidRequest(ex.Message);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return ApiErrors.PayloadTooLarge();
        }

        StartTurn turn;
        using (document)
        {
            ChatRequest chat;
            try
            {
                chat = ChatRequestParser.Parse(document.RootElement);
            }
            catch (RequestValidationException ex)
            {
                return ApiErrors.InvalidRequest(ex.Message);
            }
            var (agent, agentError) = routing.SelectAgent(request.Headers[AgentRouting.AgentHeader], chat.Model);
            if (agent is null) return ApiErrors.InvalidRequest(agentError!);
            var (sessionKey, stateless, keyError) = AgentRouting.SessionKey(request.Headers[AgentRouting.SessionKeyHeader], chat.User, agent.Id);
            if (sessionKey is null) return ApiErrors.InvalidRequest(keyError!);
            if (AgentPrompt.Build(chat.Messages, chat.Sampling) is not { } input) return ApiErrors.InvalidRequest(AgentPrompt.MissingUserMessage);

            var header = new ChatAnswerHeader($"chatcmpl_{Guid.NewGuid():N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), chat.Model);
            turn = new StartTurn(sessionKey, stateless, agent, input, header,
                chat.Stream ? AnswerMode.Stream : AnswerMode.Completion, chat.IncludeUsage);
        }

        var aborted = context.RequestAborted;
        object reply;
        try
        {
            // Waiting in the session's queue counts too, so the ask may last as long as a run may.
            reply = await sessions.ActorRef.Ask<object>(turn, agents.Value.RunTimeout, aborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AskTimeoutException)
        {
            sessions.ActorRef.Tell(new LeaveTurn(turn.SessionKey, turn.TurnId));
            if (aborted.IsCancellationRequested) return Results.Empty;
            return ApiErrors.Error(StatusCodes.Status504GatewayTimeout, "agent run timed out", "api_error", "timeout");
        }
        catch (SessionBusyException)
        {
            return ApiErrors.Error(StatusCodes.Status429TooManyRequests, "Too many requests are waiting for this session.", "rate_limit_error");
        }
        catch (Exception ex)
        {
            if (ex is AgentRunException { Error: var known }) return ApiErrors.From(known);
            loggers.CreateLogger(typeof(ChatCompletionsEndpoint)).LogError(ex, "Turn {TurnId} failed before answering", turn.TurnId);
            return ApiErrors.Internal();
        }

        switch (reply)
        {
            case TurnStreaming streaming:
                // The SSE result sets "no-cache,no-store"; the contract (spec §8) says exactly "no-cache".
                context.Response.OnStarting(static state =>
                {
                    var headers = ((HttpResponse)state).Headers;
                    headers.CacheControl = "no-cache";
                    headers.Pragma = default;
                    return Task.CompletedTask;
                }, context.Response);
                // Proxies such as nginx would otherwise hold events back.
                context.Response.Headers["X-Accel-Buffering"] = "no";
                return TypedResults.ServerSentEvents(ReadAsync(streaming.Answer, aborted));
            case TurnCompleted { Answer.Completion: { } completion }:
                return TypedResults.Json(completion, WireJson.Context.ChatCompletion);
            case TurnCompleted { Answer.Error: { } error }:
                return ApiErrors.From(error.Error);
            default:
                loggers.CreateLogger(typeof(ChatCompletionsEndpoint)).LogError("Turn {TurnId} got an unexpected reply {Reply}", turn.TurnId, reply);
                return ApiErrors.Internal();
        }
    }

    /// <summary>Pulls the run's events as the response is written; a reader that leaves tears the run down.</summary>
    private static async IAsyncEnumerable<SseItem<string>> ReadAsync(AnswerStream answer, [EnumeratorCancellation] CancellationToken aborted)
    {
        try
        {
            await foreach (var item in answer.Events.ReadAllAsync(aborted)) yield return item;
        }
        finally
        {
            answer.Abandon();
        }
    }

    /// <summary>
    /// Reads the whole body (bounded by <see cref="MaxBodyBytes"/>, from Content-Length before reading
    /// and while reading) and parses it. An empty body reads as <c>{}</c>.
    /// </summary>
    /// <returns>The document, or null when the body is too large.</returns>
    private static async Task<JsonDocument?> ReadJsonAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBodyBytes) return null;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxBodyBytes;
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted);
            var buffer = result.Buffer;
            if (buffer.Length > MaxBodyBytes)
            {
                reader.AdvanceTo(buffer.End);
                return null;
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                try
                {
                    return buffer.IsEmpty ? JsonDocument.Parse("{}") : JsonDocument.Parse(buffer);
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                }
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static IResult PlainText(int status, string text) => TypedResults.Text(text, "text/plain", statusCode: status);
}
