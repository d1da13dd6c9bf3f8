using Gateway.Actors.Sessions;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Api.Http;

/// <summary>
/// Answers with a streamed answer's Server-Sent Events (spec §8): it starts the response and hands it
/// to the run, whose lane writes the events into it as they come (.NET's <c>SseFormatter</c>, one send
/// per burst; see <see cref="Gateway.Streams.Lanes.StreamingRun"/>), then flushes the end. A reader
/// that leaves early stops the run.
/// </summary>
internal sealed class SseAnswerResult(AnswerStream answer) : IResult
{
    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        // Spec §8 says exactly "no-cache"; identity keeps compression middleware from holding events back.
        response.Headers.CacheControl = "no-cache";
        response.Headers.ContentEncoding = "identity";
        // Proxies such as nginx would otherwise hold events back.
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.GetRequiredFeature<IHttpResponseBodyFeature>().DisableBuffering();

        // A client that leaves ends the run at once, even while its agent is silent; the run's end then
        // hands the response back.
        using var leaving = context.RequestAborted.UnsafeRegister(static state => ((AnswerStream)state!).Abandon(), answer);
        try
        {
            // Started here, so the lane's first write finds the headers decided and the response begun.
            await response.StartAsync();
            // Waits while the run writes: nothing else touches the response meanwhile.
            await answer.WriteToAsync(response.BodyWriter);
            await response.BodyWriter.FlushAsync();
        }
        finally
        {
            answer.Abandon();
        }
    }
}
