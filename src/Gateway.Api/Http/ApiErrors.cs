using Gateway.Streams;
using Gateway.Streams.Wire;

namespace Gateway.Api.Http;

/// <summary>Errors in the OpenAI envelope <c>{"error":{"message","type"[,"code"]}}</c>.</summary>
public static class ApiErrors
{
    public static IResult Error(int status, string message, string type, string? code = null) =>
        TypedResults.Json(new ErrorEnvelope(new ErrorBody(message, type, code)), WireJson.Context.ErrorEnvelope, statusCode: status);

    public static IResult From(ChatError error) => Error(error.HttpStatus, error.Message, error.Type, error.Code);

    public static IResult InvalidRequest(string message) => Error(StatusCodes.Status400BadRequest, message, "invalid_request_error");

    public static IResult Unauthorized() => Error(StatusCodes.Status401Unauthorized, "Unauthorized", "unauthorized");

    public static IResult PayloadTooLarge() => Error(StatusCodes.Status413PayloadTooLarge, "Payload too large", "invalid_request_error");

    public static IResult Internal() => From(ChatError.Internal);
}
