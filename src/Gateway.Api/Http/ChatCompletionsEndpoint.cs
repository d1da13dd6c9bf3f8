using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Gateway.Actors.Sessions;
using Gateway.Api.Configuration;
using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Wire;
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

    public static IEndpointRouteBuilder MapChatCompletions(this IEndpointRouteBuilder app)
    {
        // The endpoint's services are singletons, taken once here. Taken per request (as parameters), they
        // would open a DI scope for every request and wrap the handler in a second async method, memory
        // that every open stream holds until its end.
        var services = app.ServiceProvider;
        var endpoint = new Services(
            services.GetRequiredService<ApiGate>(),
            services.GetRequiredService<AgentRouting>(),
            services.GetRequiredService<IRequiredActor<SessionRouter>>(),
            services.GetRequiredService<IOptions<AgentsOptions>>(),
            services.GetRequiredService<ActorSystem>(),
            services.GetRequiredService<IHostApplicationLifetime>());
        // Every method is mapped so that "off" is a 404 and a wrong method a 405, in the spec's order.
        app.Map(Path, async context =>
        {
            var result = await HandleAsync(context, endpoint);
            await result.ExecuteAsync(context);
        });
        return app;
    }

    private static readonly IResult ShuttingDown =
        ApiErrors.From(new ChatError("The gateway is shutting down; retry on another instance.", "api_error", null, 503, RetryAfterSeconds: 1));

    private sealed record Services(
        ApiGate Gate, AgentRouting Routing, IRequiredActor<SessionRouter> Sessions, IOptions<AgentsOptions> Agents,
        ActorSystem System, IHostApplicationLifetime Lifetime);

    private static async Task<IResult> HandleAsync(HttpContext context, Services endpoint)
    {
        var (gate, routing, sessions, agents, system, lifetime) = endpoint;
        if (gate.Admit(context, HttpMethods.Post, Path) is { } refused) return refused;

        StartTurn turn;
        try
        {
            var (prepared, invalid) = await PrepareTurnAsync(context, routing);
            if (invalid is not null) return invalid;
            turn = prepared!;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty;
        }

        // A turn asked of a stopped actor system would wait out its whole timeout: nobody is there to answer.
        if (system.WhenTerminated.IsCompleted || lifetime.ApplicationStopping.IsCancellationRequested) return ShuttingDown;

        var aborted = context.RequestAborted;
        TurnReply reply;
        try
        {
            // Waiting in the session's queue counts too, so the ask may last as long as a run may.
            reply = await sessions.ActorRef.Ask<TurnReply>(turn, agents.Value.RunTimeout, aborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AskTimeoutException)
        {
            sessions.ActorRef.Tell(new CancelTurn(turn.SessionKey, turn.TurnId, turn.Stateless));
            if (aborted.IsCancellationRequested) return Results.Empty;
            return ApiErrors.Error(StatusCodes.Status504GatewayTimeout, "agent run timed out", "api_error", "timeout");
        }

        return reply switch
        {
            TurnStreaming streaming => new SseAnswerResult(streaming.Answer),
            TurnCompleted completed => new JsonAnswerResult<ChatCompletion>(completed.Completion, WireJson.WriterContext.ChatCompletion),
            TurnFailed failed => ApiErrors.From(failed.Error),
            // TurnReply's constructor is private to its assembly, whose cases are the three above.
            _ => throw new UnreachableException($"Unknown turn reply {reply.GetType().Name}"),
        };
    }

    /// <summary>
    /// Everything that can fail with a status code, before any actor sees the request: the body, its
    /// fields, the agent, the session key and the agent's input.
    /// </summary>
    private static async Task<(StartTurn? Turn, IResult? Refusal)> PrepareTurnAsync(HttpContext context, AgentRouting routing)
    {
        var (document, unreadable) = await RequestBody.ReadJsonAsync(context);
        if (unreadable is not null) return (null, unreadable);
        using (document)
        {
            ChatRequest chat;
            try
            {
                chat = ChatRequestParser.Parse(document!.RootElement);
            }
            catch (RequestValidationException ex)
            {
                return (null, ApiErrors.InvalidRequest(ex.Message));
            }
            var headers = context.Request.Headers;
            var (agent, agentError) = routing.SelectAgent(headers[AgentRouting.AgentHeader], chat.Model);
            if (agent is null) return (null, ApiErrors.InvalidRequest(agentError!));
            // One GUID per request (each costs a call into the OS's random source): the answer's id and a stateless session's key.
            var requestId = Guid.NewGuid();
            var (sessionKey, stateless, keyError) = AgentRouting.SessionKey(headers[AgentRouting.SessionKeyHeader], chat.User, agent.Id, requestId);
            if (sessionKey is null) return (null, ApiErrors.InvalidRequest(keyError!));
            if (AgentPrompt.Build(chat) is not { } input) return (null, ApiErrors.InvalidRequest(AgentPrompt.MissingUserMessage));

            var header = new ChatAnswerHeader($"chatcmpl_{requestId:N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), chat.Model);
            return (new StartTurn(sessionKey, stateless, agent, input, header,
                chat.Stream ? AnswerMode.Stream : AnswerMode.Completion, chat.IncludeUsage), null);
        }
    }
}
