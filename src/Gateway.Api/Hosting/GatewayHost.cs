using System.Net;
using Akka.Configuration;
using Akka.Hosting;
using Gateway.Actors;
using Gateway.Agents;
using Gateway.Providers;
using Gateway.Api.Configuration;
using Gateway.Api.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Hosting;

/// <summary>Builds the gateway: config, options, the actor system, Kestrel and the routes.</summary>
public static class GatewayHost
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        var configPath = OpenClawConfigFile.Locate(builder.Configuration);
        builder.Configuration.AddInMemoryCollection(OpenClawConfigFile.Load(configPath));

        // One line per request is too much for a gateway under load; warnings and errors still show.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // This category only logs request start and finish (Information), but while any level of it is on,
        // ASP.NET starts an Activity and a logging scope for every request to feed it.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Services.AddGatewayServices();
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<GatewayOptions>>((kestrel, gateway) =>
        {
            kestrel.AddServerHeader = false;
            // The endpoint stops reading at RequestBody.MaxBytes; the server's own limit is higher, so that
            // after a 413 (or a 401) it can still drain a body that is not much larger and the client reads
            // the answer instead of a reset connection. Beyond it the connection is closed.
            kestrel.Limits.MaxRequestBodySize = RequestBody.DrainLimitBytes;
            var address = gateway.Value.Bind == BindMode.Lan ? IPAddress.Any : IPAddress.Loopback;
            kestrel.Listen(address, gateway.Value.Port);
        });

        var app = builder.Build();
        app.Logger.LogInformation("Config file: {ConfigPath}{Missing}", configPath, File.Exists(configPath) ? "" : " (not found: using defaults)");
        foreach (var key in KnownConfigKeys.Unknown(app.Configuration))
            app.Logger.LogDebug("Config key {Key} is not used by this gateway; ignored", key);

        app.Use(SecurityHeaders);
        app.UseErrorResponses();
        app.MapHealth();
        app.MapChatCompletions();
        app.MapModels();
        app.MapSessions();
        return app;
    }

    /// <summary>The gateway's Akka and tuning settings, next to the app.</summary>
    public static string HoconPath => Path.Combine(AppContext.BaseDirectory, "akka.hocon");

    /// <summary>Options, agents and the actor system; tests build on the same call.</summary>
    public static IServiceCollection AddGatewayServices(this IServiceCollection services)
    {
        var hocon = ConfigurationFactory.ParseString(File.ReadAllText(HoconPath));
        services.AddOptions<GatewayOptions>().Configure<IConfiguration>((options, configuration) => options.Load(configuration)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        services.AddSingleton<IValidateOptions<GatewayOptions>, SessionStoreCheck>();
        services.AddOptions<AgentsOptions>().Configure<IConfiguration>((options, configuration) => options.Load(configuration)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AgentsOptions>, AgentsOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<BearerAuth>();
        services.AddSingleton(provider => new FailedAuthLimiter(
            provider.GetRequiredService<IOptions<GatewayOptions>>().Value.RateLimit, provider.GetRequiredService<TimeProvider>(),
            hocon.GetInt("gateway.http.failed-auth-tracked-addresses", FailedAuthLimiter.DefaultMaxTrackedAddresses)));
        services.AddSingleton<ApiGate>();
        services.AddSingleton<AgentRouting>();
        // Agents with a model run on their upstream provider; the others on the built-in agent.
        services.AddSingleton<IAgentRuntimeResolver>(provider => new ProviderAgentResolver(
            provider.GetRequiredService<IOptions<AgentsOptions>>().Value.Providers, provider.GetRequiredService<ILoggerFactory>(),
            new UpstreamConnections(
                hocon.GetTimeSpan("gateway.upstream.connection-lifetime", UpstreamConnections.Default.Lifetime),
                hocon.GetTimeSpan("gateway.upstream.connection-idle-timeout", UpstreamConnections.Default.IdleTimeout))));
        services.AddGatewayActorServices();
        services.AddHostedService<SessionRetentionSweep>();
        services.AddAkka("gateway", (akka, provider) =>
        {
            akka.AddHocon(hocon, HoconAddMode.Prepend);
            akka.ConfigureLoggers(loggers => loggers.AddLoggerFactory());
            var store = provider.GetRequiredService<IOptions<GatewayOptions>>().Value.SessionStore;
            akka.WithSessionStore(store);
            akka.WithGatewayActors((config, services) =>
            {
                var agents = services.GetRequiredService<IOptions<AgentsOptions>>().Value;
                return GatewayActorsSetup.FromHocon(config) with
                {
                    PassivateAfter = services.GetRequiredService<IOptions<GatewayOptions>>().Value.SessionIdle,
                    RunTimeout = agents.RunTimeout,
                    MaxConcurrentRuns = agents.MaxConcurrent,
                    Journal = store.Durable ? GatewayActorsSetup.JournalFromHocon(config, store.Retention) : null,
                };
            });
        });
        return services;
    }

    /// <summary>
    /// Spec §10: on every response. Set as the response starts, so that error handlers, which clear
    /// the headers before they write, cannot drop them.
    /// </summary>
    private static Task SecurityHeaders(HttpContext context, Func<Task> next)
    {
        context.Response.OnStarting(static state =>
        {
            var headers = ((HttpResponse)state).Headers;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            return Task.CompletedTask;
        }, context.Response);
        return next();
    }
}
