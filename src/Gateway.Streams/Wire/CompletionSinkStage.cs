using Akka.Streams;
using Akka.Streams.Stage;

namespace Gateway.Streams.Wire;

/// <summary>
/// The folded end of an answer as one sink stage: it pulls the parts, folds them into one
/// <c>chat.completion</c> (or the error the run ended with) and completes its task at
/// <see cref="DonePart"/>. One stage where a Flow, StatefulSelectMany and Sink.First were three: the
/// graph is built and materialized per request. Holds only the reply text so far.
/// </summary>
internal sealed class CompletionSinkStage(ChatAnswerHeader header)
    : GraphStageWithMaterializedValue<SinkShape<ChatStreamPart>, Task<ChatAnswer>>
{
    private readonly Inlet<ChatStreamPart> _in = new("completion.in");
    private readonly ChatAnswerHeader _header = header;

    public override SinkShape<ChatStreamPart> Shape => new(_in);

    protected override Attributes InitialAttributes { get; } = Attributes.CreateName("completion");

    public override ILogicAndMaterializedValue<Task<ChatAnswer>> CreateLogicAndMaterializedValue(Attributes inheritedAttributes)
    {
        var answer = new TaskCompletionSource<ChatAnswer>(TaskCreationOptions.RunContinuationsAsynchronously);
        return new LogicAndMaterializedValue<Task<ChatAnswer>>(new Logic(this, answer), answer.Task);
    }

    private sealed class Logic : InGraphStageLogic
    {
        private readonly CompletionSinkStage _stage;
        private readonly TaskCompletionSource<ChatAnswer> _answer;
        private readonly ChatAnswerEnds.CompletionFold _fold;

        public Logic(CompletionSinkStage stage, TaskCompletionSource<ChatAnswer> answer) : base(stage.Shape)
        {
            _stage = stage;
            _answer = answer;
            _fold = new ChatAnswerEnds.CompletionFold(stage._header);
            SetHandler(stage._in, this);
        }

        public override void PreStart() => Pull(_stage._in);

        public override void OnPush()
        {
            if (_fold.Add(Grab(_stage._in)) is { } answer)
            {
                _answer.TrySetResult(answer);
                CompleteStage();
                return;
            }
            Pull(_stage._in);
        }

        public override void OnUpstreamFinish()
        {
            _answer.TrySetException(new NoSuchElementException("The answer ended before it was done."));
            CompleteStage();
        }

        public override void OnUpstreamFailure(Exception e)
        {
            _answer.TrySetException(e);
            FailStage(e);
        }

        public override void PostStop() =>
            _answer.TrySetException(new AbruptStageTerminationException(this));
    }
}
