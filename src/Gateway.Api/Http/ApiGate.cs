using Gateway.Api.Configuration;
using Microsoft.Extensions.Options;

namespace Gateway.Api.Http;

/// <summary>
/// The checks every <c>/v1</c> endpoint makes before it reads a body, in the spec's order (§1, §3):
/// the endpoint switch and the exact path (404, no auth), the method (405), the failed-auth lock
/// (429), then the bearer (401).
/// </summary>
public sealed class ApiGate(IOptions<GatewayOptions> options, BearerAuth auth, FailedAuthLimiter limiter)
{
    private readonly bool _enabled = options.Value.ChatCompletionsEnabled;

    /// <param name="exactPath">The one path the endpoint serves; routing forgives a trailing slash, the contract does not.</param>
    /// <returns>The refusal to send, or null when the request may go on.</returns>
    public IResult? Admit(HttpContext context, string method, string? exactPath = null)
    {
        var request = context.Request;
        if (!_enabled || (exactPath is not null && request.Path.Value != exactPath)) return ApiErrors.NotFound();
        if (!string.Equals(request.Method, method, StringComparison.OrdinalIgnoreCase))
        {
            context.Response.Headers.Allow = method;
            return ApiErrors.MethodNotAllowed();
        }

        var address = context.Connection.RemoteIpAddress;
        if (limiter.LockedFor(address) is { } wait) return ApiErrors.RateLimited(wait);
        switch (auth.Check(request))
        {
            case AuthResult.Allowed:
                limiter.Reset(address);
                return null;
            case AuthResult.Wrong:
                limiter.RecordFailure(address);
                return ApiErrors.Unauthorized();
            default: // missing credentials never count against the address
                return ApiErrors.Unauthorized();
        }
    }
}
