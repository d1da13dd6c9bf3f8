using System.Text.RegularExpressions;
using Gateway.Agents;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Configuration;

/// <summary>
/// The agents of <c>agents.list</c> over <c>agents.defaults</c>. With no list there is one agent,
/// <c>main</c>. The default agent is the entry marked <c>default</c>, else the first.
/// </summary>
public sealed partial class AgentsOptions
{
    public const string FallbackAgentId = "main";

    public Dictionary<string, AgentDefinition> Agents { get; } = new(StringComparer.Ordinal);

    public string DefaultAgentId { get; set; } = FallbackAgentId;

    /// <summary><c>agents.defaults.timeoutSeconds</c>: the longest a run may take.</summary>
    public TimeSpan RunTimeout { get; set; } = TimeSpan.FromSeconds(600);

    /// <summary><c>agents.defaults.maxConcurrent</c>: runs across sessions at once; null: no cap.</summary>
    public int? MaxConcurrent { get; set; }

    public List<string> Problems { get; } = [];

    /// <summary>The upstream providers the agents' models live on.</summary>
    public IReadOnlyList<Gateway.Providers.ProviderSettings> Providers { get; set; } = [];

    /// <summary>Agent ids as the spec allows them (compared lowercased).</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    public static partial Regex AgentIdPattern();

    public void Load(IConfiguration root)
    {
        var reader = new ConfigReader(root);
        Providers = ProvidersConfig.Read(root, reader);
        var defaults = reader.Section("agents.defaults");
        var defaultModel = ModelOf(reader, defaults.GetSection("model"));
        var defaultFallbacks = FallbacksOf(reader, defaults.GetSection("model"));
        var defaultWorkspace = reader.String(defaults.GetSection("workspace"));
        var defaultBuiltIn = BuiltInOf(reader, defaults.GetSection("builtin"), BuiltInAgentSettings.Default);
        if (reader.Number(defaults.GetSection("timeoutSeconds"), 1, 7 * 24 * 3600) is { } timeoutSeconds)
            RunTimeout = TimeSpan.FromSeconds(timeoutSeconds);
        MaxConcurrent = reader.Integer(defaults.GetSection("maxConcurrent"), 1, 100_000);

        string? firstId = null;
        string? markedDefault = null;
        foreach (var entry in reader.Section("agents.list").GetChildren())
        {
            var idSection = entry.GetSection("id");
            var id = reader.String(idSection)?.Trim().ToLowerInvariant();
            if (string.IsNullOrEmpty(id))
            {
                reader.Error(idSection, "every agent needs an id");
                continue;
            }
            if (!AgentIdPattern().IsMatch(id))
            {
                reader.Error(idSection, $"'{id}' is not a valid agent id (letters, digits, '_' and '-', at most 64, starting with a letter or digit)");
                continue;
            }
            if (Agents.ContainsKey(id))
            {
                reader.Error(idSection, $"agent id '{id}' is used twice");
                continue;
            }
            var ownModel = ModelOf(reader, entry.GetSection("model"));
            Agents[id] = new AgentDefinition(
                id,
                ownModel ?? defaultModel,
                BuiltInOf(reader, entry.GetSection("builtin"), defaultBuiltIn),
                reader.String(entry.GetSection("workspace")) ?? defaultWorkspace,
                ownModel is null ? defaultFallbacks : FallbacksOf(reader, entry.GetSection("model")));
            firstId ??= id;
            if (reader.Bool(entry.GetSection("default")) == true) markedDefault ??= id;
        }
        if (Agents.Count == 0)
            Agents[FallbackAgentId] = new AgentDefinition(FallbackAgentId, defaultModel, defaultBuiltIn, defaultWorkspace, defaultFallbacks);
        CheckModelReferences(reader);
        DefaultAgentId = markedDefault ?? firstId ?? FallbackAgentId;
        Problems.AddRange(reader.Errors);
    }

    private void CheckModelReferences(ConfigReader reader)
    {
        foreach (var section in (IEnumerable<IConfigurationSection>)[reader.Section("agents.defaults"), .. reader.Section("agents.list").GetChildren()])
        {
            var model = section.GetSection("model");
            if (ModelOf(reader, model) is { } primary)
                ProvidersConfig.CheckReference(reader, Providers, ConfigReader.DisplayKey(model.Value is null ? model.GetSection("primary") : model), primary);
            var index = 0;
            foreach (var fallback in FallbacksOf(reader, model) ?? [])
                ProvidersConfig.CheckReference(reader, Providers, $"{ConfigReader.DisplayKey(model)}.fallbacks[{index++}]", fallback);
        }
    }

    private static IReadOnlyList<string>? FallbacksOf(ConfigReader reader, IConfigurationSection model)
    {
        if (model.Value is not null) return null;
        var fallbacks = model.GetSection("fallbacks").GetChildren().Select(reader.String).OfType<string>().ToList();
        return fallbacks.Count == 0 ? null : fallbacks;
    }

    /// <summary>A model is <c>"provider/model"</c> or <c>{ primary: "provider/model", fallbacks: [...] }</c>.</summary>
    private static string? ModelOf(ConfigReader reader, IConfigurationSection section) =>
        section.Value is { Length: > 0 } model ? model : reader.String(section.GetSection("primary"));

    private static BuiltInAgentSettings BuiltInOf(ConfigReader reader, IConfigurationSection section, BuiltInAgentSettings inherited)
    {
        if (!section.Exists()) return inherited;
        var delay = reader.Number(section.GetSection("pieceDelayMs"), 0, 3_600_000);
        var pieces = reader.Integer(section.GetSection("pieces"), 1, 100_000_000);
        var replyChars = reader.Number(section.GetSection("replyChars"), 1, 1e12);
        return new BuiltInAgentSettings(
            delay is { } ms ? TimeSpan.FromMilliseconds(ms) : inherited.PieceDelay,
            pieces ?? inherited.Pieces,
            replyChars is { } chars ? (long)chars : inherited.ReplyChars);
    }
}

public sealed class AgentsOptionsValidator : IValidateOptions<AgentsOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentsOptions options) =>
        options.Problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(options.Problems);
}
