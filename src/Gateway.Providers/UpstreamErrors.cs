using System.ClientModel;
using System.Globalization;
using Gateway.Agents;


namespace Gateway.Providers;

/// <summary>
/// Maps an upstream failure to the error the client sees (spec §7): auth → <c>authentication_error</c>,
/// rate limit → <c>rate_limit_error</c> 429 with the upstream's Retry-After, timeout → 504, anything
/// else → 502. Upstream bodies are logged, never passed on: they may name keys, hosts or accounts.
/// </summary>
public static class UpstreamErrors
{
    public static ChatError Timeout { get; } = new("The upstream model timed out.", "api_error", "timeout", 504);

    public static ChatError Map(Exception exception) => exception switch
    {
        AgentRunException known => known.Error,
        ClientResultException { Status: 401 or 403 } =>
            new ChatError("The upstream model provider rejected the gateway's credentials.", "authentication_error", null, 401),
        ClientResultException { Status: 429 } limited =>
            new ChatError("The upstream model is rate limited. Please try again later.", "rate_limit_error", null, 429, RetryAfterSeconds(limited)),
        ClientResultException { Status: 408 or 504 } or TimeoutException => Timeout,
        ClientResultException { Status: > 0 } failed =>
            new ChatError($"The upstream model failed (status {failed.Status}).", "api_error", null, 502),
        _ => new ChatError("The upstream model could not be reached.", "api_error", null, 502),
    };

    private static int? RetryAfterSeconds(ClientResultException exception)
    {
        if (exception.GetRawResponse()?.Headers is not { } headers || !headers.TryGetValue("Retry-After", out var value) || value is null) return null;
        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)) return Math.Max(0, seconds);
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
            return Math.Max(0, (int)Math.Ceiling((when - DateTimeOffset.UtcNow).TotalSeconds));
        return null;
    }
}
