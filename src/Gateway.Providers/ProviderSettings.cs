namespace Gateway.Providers;

/// <summary>
/// An upstream provider from <c>models.providers.&lt;name&gt;</c>: an OpenAI-compatible server
/// (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp, LM Studio…) and the models the config names on it.
/// </summary>
/// <param name="BaseUrl">The API root, e.g. <c>https://api.openai.com/v1</c> or <c>http://127.0.0.1:11434/v1</c>.</param>
/// <param name="ApiKey">The resolved key (an <c>${VAR}</c> reference is already replaced); null when the server needs none.</param>
public sealed record ProviderSettings(
    string Name,
    Uri BaseUrl,
    string? ApiKey,
    IReadOnlyList<ProviderModel> Models,
    UpstreamTimeouts Timeouts);

/// <param name="ContextWindow">Tokens the model reads at most: bounds the history sent.</param>
/// <param name="MaxTokens">The model's output cap, used when the client sets none.</param>
public sealed record ProviderModel(string Id, string? Name = null, int? ContextWindow = null, int? MaxTokens = null);

/// <param name="Connect">Establishing the TCP/TLS connection.</param>
/// <param name="FirstToken">From sending the request to the first token (content or tool call).</param>
/// <param name="Idle">Between two chunks once tokens flow. There is no cap on a long, healthy stream.</param>
public sealed record UpstreamTimeouts(TimeSpan Connect, TimeSpan FirstToken, TimeSpan Idle)
{
    public static UpstreamTimeouts Default { get; } = new(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60));
}

/// <summary>How long the pooled connections to upstream providers live (<c>gateway.upstream</c> in akka.hocon).</summary>
/// <param name="Lifetime">A connection is replaced after this long, so DNS changes are seen.</param>
/// <param name="IdleTimeout">An idle connection is closed after this long, before servers close it under a request.</param>
public sealed record UpstreamConnections(TimeSpan Lifetime, TimeSpan IdleTimeout)
{
    public static UpstreamConnections Default { get; } = new(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(50));
}

/// <summary>A model reference <c>provider/model</c>, split at the first slash (model ids may hold slashes).</summary>
public sealed record ModelRef(string Provider, string Model)
{
    public static ModelRef? Parse(string reference)
    {
        var slash = reference.IndexOf('/');
        if (slash <= 0 || slash == reference.Length - 1) return null;
        return new ModelRef(reference[..slash].Trim(), reference[(slash + 1)..].Trim());
    }

    public override string ToString() => $"{Provider}/{Model}";
}
