using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Gateway.Actors.Sessions;

/// <summary>
/// The mailbox of a session: unbounded like Akka's default, but it holds no memory while empty. The
/// default queue (a ConcurrentQueue) keeps a 32-slot segment of about a kilobyte for the actor's
/// whole life; a session spends most of its life idle, and a gateway holds many of them. Senders take
/// a short lock; a session receives a handful of messages per turn, so there is no contention to speak of.
/// </summary>
public sealed class SessionMailbox : MailboxType, IProducesMessageQueue<SessionMailbox.Queue>
{
    /// <summary>Where the mailbox is configured (see <see cref="Hocon"/>).</summary>
    public const string ConfigPath = "gateway.session-mailbox";

    /// <summary>The config that <see cref="ConfigPath"/> names; the actor system needs it to use the mailbox.</summary>
    public static readonly string Hocon = $$"""{{ConfigPath}} { mailbox-type = "{{typeof(SessionMailbox).FullName}}, {{typeof(SessionMailbox).Assembly.GetName().Name}}" }""";

    public SessionMailbox(Settings settings, Config config) : base(settings, config)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new Queue();

    /// <summary>A locked <see cref="Queue{T}"/>, made on the first message and dropped when drained.</summary>
    public sealed class Queue : IMessageQueue, IUnboundedMessageQueueSemantics
    {
        // Locks on itself: a lock object of its own would cost every idle session another 24 bytes.
        private Queue<Envelope>? _envelopes;
        private volatile int _count;

        public bool HasMessages => _count > 0;

        public int Count => _count;

        public void Enqueue(IActorRef receiver, Envelope envelope)
        {
            lock (this)
            {
                (_envelopes ??= new Queue<Envelope>(4)).Enqueue(envelope);
                _count++;
            }
        }

        public bool TryDequeue(out Envelope envelope)
        {
            lock (this)
            {
                if (_envelopes is null || !_envelopes.TryDequeue(out envelope))
                {
                    envelope = default;
                    return false;
                }
                if (--_count == 0) _envelopes = null;
                return true;
            }
        }

        public void CleanUp(IActorRef owner, IMessageQueue deadletters)
        {
            while (TryDequeue(out var envelope)) deadletters.Enqueue(owner, envelope);
        }
    }
}
