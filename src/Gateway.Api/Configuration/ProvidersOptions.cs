using Gateway.Providers;
using Microsoft.Extensions.Configuration;

namespace Gateway.Api.Configuration;

/// <summary>
/// Upstream model providers from <c>models.providers.&lt;name&gt;</c>: <c>baseUrl</c>, <c>apiKey</c>
/// (a literal or <c>"${ENV_VAR}"</c>), <c>api: "openai-completions"</c>, <c>models: [{ id, name,
/// contextWindow, maxTokens }]</c>, and the gateway's timeouts (<c>connectTimeoutMs</c>,
/// <c>firstTokenTimeoutMs</c>, <c>idleTimeoutMs</c>).
/// </summary>
public static class ProvidersConfig
{
    public const string OpenAICompletionsApi = "openai-completions";

    public static IReadOnlyList<ProviderSettings> Read(IConfiguration root, ConfigReader reader)
    {
        var providers = new List<ProviderSettings>();
        foreach (var section in reader.Section("models.providers").GetChildren())
        {
            var baseUrlSection = section.GetSection("baseUrl");
            var baseUrlText = reader.String(baseUrlSection);
            if (baseUrlText is null || !Uri.TryCreate(baseUrlText, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
            {
                reader.Error(baseUrlSection, baseUrlText is null ? "every provider needs a baseUrl" : $"'{baseUrlText}' is not an http(s) URL");
                continue;
            }
            reader.OneOf(section.GetSection("api"), OpenAICompletionsApi);
            var models = new List<ProviderModel>();
            foreach (var model in section.GetSection("models").GetChildren())
            {
                // A model may be listed as just its id.
                var id = model.Value ?? reader.String(model.GetSection("id"));
                if (string.IsNullOrWhiteSpace(id))
                {
                    reader.Error(model, "every model needs an id");
                    continue;
                }
                models.Add(new ProviderModel(id.Trim(), reader.String(model.GetSection("name")),
                    reader.Integer(model.GetSection("contextWindow"), 1, int.MaxValue),
                    reader.Integer(model.GetSection("maxTokens"), 1, int.MaxValue)));
            }
            var defaults = UpstreamTimeouts.Default;
            providers.Add(new ProviderSettings(
                section.Key,
                new Uri(baseUrl.ToString().TrimEnd('/')),
                reader.StringOrVariable(section.GetSection("apiKey")),
                models,
                new UpstreamTimeouts(
                    Milliseconds(reader, section.GetSection("connectTimeoutMs")) ?? defaults.Connect,
                    Milliseconds(reader, section.GetSection("firstTokenTimeoutMs")) ?? defaults.FirstToken,
                    Milliseconds(reader, section.GetSection("idleTimeoutMs")) ?? defaults.Idle)));
        }
        return providers;
    }

    /// <summary>Checks that <paramref name="reference"/> names a configured provider and one of its models.</summary>
    public static void CheckReference(ConfigReader reader, IReadOnlyList<ProviderSettings> providers, string key, string reference)
    {
        if (ModelRef.Parse(reference) is not { } model)
        {
            reader.Error($"{key}: '{reference}' is not a model reference; use 'provider/model'");
            return;
        }
        var provider = providers.FirstOrDefault(candidate => candidate.Name == model.Provider);
        if (provider is null)
            reader.Error($"{key}: unknown provider '{model.Provider}' (configure it under models.providers)");
        else if (provider.Models.All(candidate => candidate.Id != model.Model))
            reader.Error($"{key}: provider '{model.Provider}' has no model '{model.Model}' (list it in models.providers.{model.Provider}.models)");
    }

    private static TimeSpan? Milliseconds(ConfigReader reader, IConfigurationSection section) =>
        reader.Number(section, 1, int.MaxValue) is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
}
