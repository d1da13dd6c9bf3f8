using Akka.Hosting;
using Gateway.Actors.Sessions;

namespace Gateway.Api.Http;

/// <summary>Liveness and readiness probes; no auth, so orchestrators can call them.</summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok", "text/plain"));
        app.MapGet("/readyz", (ActorRegistry registry) =>
            registry.TryGet<SessionRouter>(out _)
                ? TypedResults.Text("ready", "text/plain")
                : TypedResults.Text("starting", "text/plain", statusCode: StatusCodes.Status503ServiceUnavailable));
        return app;
    }
}
