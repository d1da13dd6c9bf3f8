using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Gateway.Actors;

/// <summary>
/// The mailbox of sessions with memory, runs and lanes: unbounded like Akka's default, but it holds no
/// memory while empty. The default queue (a ConcurrentQueue) keeps a 32-slot segment of about a kilobyte
/// for the actor's whole life; these actors spend most of their lives waiting (an idle session, a
/// stream waiting for its model), and a gateway holds many of them. The price: a small queue made
/// whenever a second message waits behind a first (one waiting message sits in a field), and senders
/// take a short lock; these actors have few senders at a time (a lane's interpreter serves the eight
/// lanes of its graph), so there is little contention. The few busy, shared stateless sessions keep
/// Akka's default mailbox.
/// </summary>
public sealed class LeanMailbox : MailboxType, IProducesMessageQueue<LeanMailbox.Queue>
{
    /// <summary>Where the mailbox is configured (see <see cref="Hocon"/>).</summary>
    public const string ConfigPath = "gateway.lean-mailbox";

    /// <summary>
    /// The dispatcher lanes run on: Akka's default one (the .NET thread pool) with this mailbox. A
    /// materializer names a dispatcher, not a mailbox, for the actors it starts.
    /// </summary>
    public const string LaneDispatcherPath = "gateway.lane-dispatcher";

    private static string MailboxTypeName => $"{typeof(LeanMailbox).FullName}, {typeof(LeanMailbox).Assembly.GetName().Name}";

    /// <summary>
    /// What <see cref="ConfigPath"/> and <see cref="LaneDispatcherPath"/> are, under the tuning in
    /// <c>akka.hocon</c> (the lane dispatcher's throughput): only what names this type lives here.
    /// </summary>
    public static readonly string Hocon = $$"""
        {{ConfigPath}} { mailbox-type = "{{MailboxTypeName}}" }
        {{LaneDispatcherPath}} {
          type = Dispatcher
          executor = default-executor
          mailbox-type = "{{MailboxTypeName}}"
        }
        """;

    public LeanMailbox(Settings settings, Config config) : base(settings, config)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new Queue();

    /// <summary>
    /// One message in a field, more in a locked <see cref="Queue{T}"/> made when a second one arrives
    /// and dropped when drained. Most of these actors get one message at a time (a lane's next signal, a
    /// run's outcome): they never make the queue at all.
    /// </summary>
    public sealed class Queue : IMessageQueue, IUnboundedMessageQueueSemantics
    {
        // Locks on itself: a lock object of its own would cost every idle actor another 24 bytes.
        // The oldest message is in _first whenever _hasFirst; the rest, in order, in _rest.
        private Envelope _first;
        private bool _hasFirst;
        private Queue<Envelope>? _rest;
        private volatile int _count;

        public bool HasMessages => _count > 0;

        public int Count => _count;

        public void Enqueue(IActorRef receiver, Envelope envelope)
        {
            lock (this)
            {
                if (_count == 0)
                {
                    _first = envelope;
                    _hasFirst = true;
                }
                else
                {
                    (_rest ??= new Queue<Envelope>(4)).Enqueue(envelope);
                }
                _count++;
            }
        }

        public bool TryDequeue(out Envelope envelope)
        {
            lock (this)
            {
                if (_hasFirst)
                {
                    envelope = _first;
                    _first = default;
                    _hasFirst = false;
                }
                else if (_rest is null || !_rest.TryDequeue(out envelope))
                {
                    envelope = default;
                    return false;
                }
                if (--_count == 0) _rest = null;
                return true;
            }
        }

        public void CleanUp(IActorRef owner, IMessageQueue deadletters)
        {
            while (TryDequeue(out var envelope)) deadletters.Enqueue(owner, envelope);
        }
    }
}
