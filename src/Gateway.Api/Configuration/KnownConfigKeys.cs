using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Gateway.Api.Configuration;

/// <summary>
/// The OpenClaw config keys this gateway implements. OpenClaw configs carry many more; those are
/// ignored, with a debug line each so a typo can still be found.
/// </summary>
public static partial class KnownConfigKeys
{
    private static readonly HashSet<string> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        "gateway.port", "gateway.bind",
        "gateway.auth.mode", "gateway.auth.token", "gateway.auth.password",
        "gateway.auth.rateLimit.maxAttempts", "gateway.auth.rateLimit.windowMs",
        "gateway.auth.rateLimit.lockoutMs", "gateway.auth.rateLimit.exemptLoopback",
        "gateway.http.endpoints.chatCompletions.enabled",
        "session.idleMinutes",
        "gateway.sessions.persistence.provider", "gateway.sessions.persistence.connectionString", "gateway.sessions.retentionDays",
        "agents.defaults.model", "agents.defaults.model.primary", "agents.defaults.model.fallbacks[]",
        "agents.defaults.timeoutSeconds", "agents.defaults.maxConcurrent", "agents.defaults.workspace",
        "agents.defaults.builtin.pieceDelayMs", "agents.defaults.builtin.pieces", "agents.defaults.builtin.replyChars",
        "agents.list[].id", "agents.list[].default", "agents.list[].name", "agents.list[].workspace",
        "agents.list[].model", "agents.list[].model.primary", "agents.list[].model.fallbacks[]",
        "agents.list[].builtin.pieceDelayMs", "agents.list[].builtin.pieces", "agents.list[].builtin.replyChars",
    };

    /// <summary>Keys under <c>models.providers.&lt;name&gt;</c> (any provider name).</summary>
    private static readonly HashSet<string> KnownProviderKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "baseUrl", "apiKey", "api", "connectTimeoutMs", "firstTokenTimeoutMs", "idleTimeoutMs",
        "models[]", "models[].id", "models[].name", "models[].contextWindow", "models[].maxTokens",
    };

    /// <summary>Keys present in the config that the gateway does not use, as the user wrote them.</summary>
    public static IEnumerable<string> Unknown(IConfiguration root)
    {
        var section = root.GetSection(OpenClawConfigFile.Section);
        foreach (var (path, _) in section.AsEnumerable(makePathsRelative: false))
        {
            if (section.Path == path || root.GetSection(path).GetChildren().Any()) continue;
            var display = ConfigReader.DisplayKey(path);
            var shape = Index().Replace(display, "[]");
            if (Known.Contains(shape)) continue;
            if (ProviderKey().Match(shape) is { Success: true } provider && KnownProviderKeys.Contains(provider.Groups["key"].Value)) continue;
            yield return display;
        }
    }

    [GeneratedRegex(@"^models\.providers\.[^.\[]+\.(?<key>.+)$")]
    private static partial Regex ProviderKey();

    [GeneratedRegex(@"\[\d+\]")]
    private static partial Regex Index();
}
