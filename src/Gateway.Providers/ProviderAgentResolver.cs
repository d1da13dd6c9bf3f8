using System.Collections.Concurrent;
using Gateway.Agents;
using Microsoft.Extensions.Logging;

namespace Gateway.Providers;

/// <summary>
/// Serves an agent with no model by the built-in agent, and an agent with a model by that model's
/// upstream provider (with its fallbacks). The config is validated at start, so every reference
/// resolves here.
/// </summary>
public sealed class ProviderAgentResolver : IAgentRuntimeResolver, IDisposable
{
    private readonly BuiltInAgent _builtIn = new();
    private readonly Dictionary<string, ProviderClient> _providers;
    private readonly Dictionary<string, ProviderSettings> _settings;
    private readonly ConcurrentDictionary<AgentDefinition, IAgentRuntime> _agents = new();
    private readonly ILoggerFactory _loggers;

    public ProviderAgentResolver(IEnumerable<ProviderSettings> providers, ILoggerFactory loggers, UpstreamConnections? connections = null)
    {
        _settings = providers.ToDictionary(provider => provider.Name, StringComparer.Ordinal);
        _providers = _settings.Values.ToDictionary(provider => provider.Name, provider => new ProviderClient(provider, connections), StringComparer.Ordinal);
        _loggers = loggers;
    }

    public IAgentRuntime Resolve(AgentDefinition agent) =>
        agent.Model is null ? _builtIn : _agents.GetOrAdd(agent, Create);

    private OpenAICompatibleAgent Create(AgentDefinition agent)
    {
        var chain = new List<(ProviderClient, ProviderModel)>();
        foreach (var reference in (IEnumerable<string>)[agent.Model!, .. agent.Fallbacks ?? []])
        {
            var model = ModelRef.Parse(reference) ?? throw new InvalidOperationException($"Agent '{agent.Id}': '{reference}' is not provider/model.");
            var provider = _settings[model.Provider];
            var known = provider.Models.FirstOrDefault(candidate => candidate.Id == model.Model) ?? new ProviderModel(model.Model);
            chain.Add((_providers[model.Provider], known));
        }
        return new OpenAICompatibleAgent(chain, _loggers.CreateLogger<OpenAICompatibleAgent>());
    }

    public void Dispose()
    {
        foreach (var provider in _providers.Values) provider.Dispose();
    }
}
