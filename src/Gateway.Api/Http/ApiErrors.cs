using Gateway.Agents;
using Gateway.Streams;
using Gateway.Streams.Wire;

namespace Gateway.Api.Http;

/// <summary>
/// The gateway's error answers. Everything an endpoint refuses on <c>/v1</c> is in the OpenAI
/// envelope <c>{"error":{"message","type"[,"code"]}}</c>, except the two the contract gives as plain
/// text (spec §1): a path that is not served (404) and a method that is not allowed (405).
/// </summary>
public static class ApiErrors
{
    public const string InvalidRequestType = "invalid_request_error";

    public static IResult Error(int status, string message, string type, string? code = null) =>
        TypedResults.Json(new ErrorEnvelope(new ErrorBody(message, type, code)), WireJson.Context.ErrorEnvelope, statusCode: status);

    /// <summary>A run's error as its status; a rate limit carries its <c>Retry-After</c>.</summary>
    public static IResult From(ChatError error) =>
        WithRetryAfter(Error(error.HttpStatus, error.Message, error.Type, error.Code), error.RetryAfterSeconds);

    public static IResult InvalidRequest(string message) => Error(StatusCodes.Status400BadRequest, message, InvalidRequestType);

    public static IResult Unauthorized() => Error(StatusCodes.Status401Unauthorized, "Unauthorized", "unauthorized");

    /// <summary>The failed-auth lock (spec §3), with an integer <c>Retry-After</c>.</summary>
    public static IResult RateLimited(TimeSpan retryAfter) => WithRetryAfter(
        Error(StatusCodes.Status429TooManyRequests, "Too many failed authentication attempts. Please try again later.", "rate_limited"),
        (int)Math.Clamp(Math.Ceiling(retryAfter.TotalSeconds), 1, int.MaxValue));

    public static IResult PayloadTooLarge() => Error(StatusCodes.Status413PayloadTooLarge, "Payload too large", InvalidRequestType);

    public static IResult Internal() => From(ChatError.Internal);

    /// <summary>Kestrel refused the body (too large, malformed chunks, too slow): its status, its message (generic, safe to send).</summary>
    public static IResult FromBadRequest(BadHttpRequestException exception) =>
        exception.StatusCode == StatusCodes.Status413PayloadTooLarge
            ? PayloadTooLarge()
            : Error(exception.StatusCode, exception.Message, InvalidRequestType);

    /// <summary>The path is not served (or the endpoint is off).</summary>
    public static IResult NotFound() => PlainText(StatusCodes.Status404NotFound, "Not Found");

    /// <summary>The caller sets <c>Allow</c>.</summary>
    public static IResult MethodNotAllowed() => PlainText(StatusCodes.Status405MethodNotAllowed, "Method Not Allowed");

    private static IResult PlainText(int status, string text) => TypedResults.Text(text, "text/plain", statusCode: status);

    private static IResult WithRetryAfter(IResult result, int? seconds) => seconds is { } value ? new RetryAfterResult(result, value) : result;

    /// <summary>Sets <c>Retry-After</c> (whole seconds) as the result is written.</summary>
    private sealed class RetryAfterResult(IResult inner, int seconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
