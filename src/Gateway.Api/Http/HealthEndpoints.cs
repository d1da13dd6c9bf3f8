using Akka.Actor;
using Akka.Hosting;
using Gateway.Actors.Sessions;

namespace Gateway.Api.Http;

/// <summary>Liveness and readiness probes; no auth, so orchestrators can call them.</summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok", "text/plain"));
        app.MapGet("/readyz", (ActorRegistry registry, ActorSystem system, IHostApplicationLifetime lifetime) =>
            Readiness(registry, system, lifetime) is { } notReady
                ? TypedResults.Text(notReady, "text/plain", statusCode: StatusCodes.Status503ServiceUnavailable)
                : TypedResults.Text("ready", "text/plain"));
        return app;
    }

    /// <summary>
    /// Null when the gateway can run turns: its session router is up, its actor system alive, and it is not
    /// stopping. Otherwise why not: a balancer should stop sending it requests.
    /// </summary>
    private static string? Readiness(ActorRegistry registry, ActorSystem system, IHostApplicationLifetime lifetime)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) return "stopping";
        if (system.WhenTerminated.IsCompleted) return "actor system stopped";
        return registry.TryGet<SessionRouter>(out _) ? null : "starting";
    }
}
