using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.WebUtilities;

namespace Gateway.Api.Http;

/// <summary>
/// Errors that ASP.NET itself raises, in the contract's shapes: on <c>/v1</c>, an exception that
/// escapes an endpoint is a 500 <c>internal error</c> / <c>api_error</c> (logged, never sent), a
/// body Kestrel refused is its 4xx, and any other bodiless error gets the envelope; anywhere, a path
/// nothing serves is a plain-text <c>Not Found</c> (spec §1).
/// </summary>
/// <remarks>
/// Requests that Kestrel rejects while parsing the request line or headers (a malformed
/// <c>Content-Length</c>, oversized headers) never reach the app: Kestrel answers those itself with
/// an empty 400 and closes the connection, and that answer cannot be customised.
/// </remarks>
public static class ErrorResponses
{
    public const string ApiPrefix = "/v1";

    public static WebApplication UseErrorResponses(this WebApplication app)
    {
        // Not around chat completions: every answer there has its body (errors included), and the
        // middleware costs each request an items dictionary and a feature, which an open stream holds to its end.
        app.UseWhen(static context => !IsChatCompletions(context), pages => pages.UseStatusCodePages(WriteStatusAsync));
        app.UseWhen(IsApi, api => api.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = WriteExceptionAsync }));
        return app;
    }

    private static bool IsApi(HttpContext context) => context.Request.Path.StartsWithSegments(ApiPrefix);

    private static bool IsChatCompletions(HttpContext context) =>
        context.Request.Path.Equals(ChatCompletionsEndpoint.Path, StringComparison.OrdinalIgnoreCase);

    private static Task WriteExceptionAsync(HttpContext context)
    {
        var result = context.Features.Get<IExceptionHandlerFeature>()?.Error is BadHttpRequestException badRequest
            ? ApiErrors.FromBadRequest(badRequest)
            : ApiErrors.Internal();
        return result.ExecuteAsync(context);
    }

    /// <summary>Runs only for an error status with no body yet.</summary>
    private static Task WriteStatusAsync(StatusCodeContext status)
    {
        var context = status.HttpContext;
        var code = context.Response.StatusCode;
        if (code == StatusCodes.Status404NotFound) return ApiErrors.NotFound().ExecuteAsync(context);
        if (!IsApi(context)) return Task.CompletedTask;
        var type = code >= 500 ? "api_error" : ApiErrors.InvalidRequestType;
        return ApiErrors.Error(code, ReasonPhrases.GetReasonPhrase(code), type).ExecuteAsync(context);
    }
}
