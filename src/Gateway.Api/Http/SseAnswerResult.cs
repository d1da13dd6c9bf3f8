using Gateway.Actors.Sessions;
using Microsoft.AspNetCore.Http.Features;

namespace Gateway.Api.Http;

/// <summary>
/// Answers with a streamed answer's Server-Sent Events (spec §8): it starts the response and hands the
/// run an <see cref="SseAnswerWriter"/> on it, through which the lane writes the events as they come
/// (one send per burst), then flushes the end. A reader that leaves early cancels the run.
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
        using var leaving = context.RequestAborted.UnsafeRegister(static state => ((AnswerStream)state!).Cancel(), answer);
        try
        {
            // Started here, so the lane's first write finds the headers decided and the response begun.
            await response.StartAsync();
            // Waits while the run writes: nothing else touches the response meanwhile.
            await answer.WriteToAsync(new SseAnswerWriter(response.BodyWriter, answer.Header));
            await response.BodyWriter.FlushAsync();
        }
        finally
        {
            answer.Cancel();
        }
    }
}
