using Gateway.Agents;
using Gateway.Api.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Http;

/// <summary>Picks the agent (spec §4) and the session key (spec §5) for a request.</summary>
public sealed class AgentRouting(IOptions<AgentsOptions> options)
{
    public const string AgentHeader = "x-openclaw-agent-id";
    public const string SessionKeyHeader = "x-openclaw-session-key";
    public const string InvalidModel = "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.";
    public const string ReservedSessionKey = "`x-openclaw-session-key` cannot use reserved internal session namespaces.";

    private static readonly string[] ReservedNamespaces = ["subagent:", "cron:", "acp:"];
    private readonly AgentsOptions _agents = options.Value;

    public IEnumerable<string> AgentIds => _agents.Agents.Keys;

    /// <summary>The header wins over <c>model</c>; both fall back to the default agent.</summary>
    public (AgentDefinition? Agent, string? Error) SelectAgent(string? headerAgentId, string model)
    {
        string id;
        if (!string.IsNullOrWhiteSpace(headerAgentId))
        {
            id = headerAgentId.Trim().ToLowerInvariant();
        }
        else if (AgentIdFromModel(model) is { } fromModel)
        {
            id = fromModel;
        }
        else
        {
            return (null, InvalidModel);
        }
        if (id.Length == 0) id = _agents.DefaultAgentId;
        return _agents.Agents.TryGetValue(id, out var agent) ? (agent, null) : (null, $"Unknown agent '{id}'.");
    }

    /// <returns>The agent id ("" for the default agent), or null when the model string is not ours.</returns>
    public static string? AgentIdFromModel(string model)
    {
        var trimmed = model.Trim();
        if (trimmed.Equals("openclaw", StringComparison.OrdinalIgnoreCase)
            || trimmed.Equals("openclaw/default", StringComparison.OrdinalIgnoreCase)) return "";
        foreach (var prefix in (ReadOnlySpan<string>)["openclaw/", "openclaw:", "agent:"])
        {
            if (!trimmed.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) continue;
            var id = trimmed[prefix.Length..].ToLowerInvariant();
            return AgentsOptions.AgentIdPattern().IsMatch(id) ? id : null;
        }
        return null;
    }

    /// <summary>
    /// The header's key as given; else a stable key from <c>user</c>; else a fresh stateless key, made
    /// from <paramref name="requestId"/> (a new GUID each request; the caller's, so a request needs only one).
    /// </summary>
    public static (string? Key, bool Stateless, string? Error) SessionKey(string? headerKey, string? user, string agentId, Guid requestId)
    {
        if (!string.IsNullOrWhiteSpace(headerKey))
        {
            var key = headerKey.Trim();
            return IsReserved(key) ? (null, false, ReservedSessionKey) : (key, false, null);
        }
        if (!string.IsNullOrWhiteSpace(user))
            return ($"agent:{agentId}:openai-user:{user.Trim().ToLowerInvariant()}", false, null);
        return ($"agent:{agentId}:openai:{requestId}", true, null);
    }

    private static bool IsReserved(string key)
    {
        var rest = key;
        if (rest.StartsWith("agent:", StringComparison.OrdinalIgnoreCase))
        {
            var afterAgent = rest.IndexOf(':', "agent:".Length);
            if (afterAgent < 0) return false;
            rest = rest[(afterAgent + 1)..];
            return StartsWithReserved(rest);
        }
        return StartsWithReserved(rest);
    }

    private static bool StartsWithReserved(string key)
    {
        foreach (var reserved in ReservedNamespaces)
            if (key.StartsWith(reserved, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }
}
