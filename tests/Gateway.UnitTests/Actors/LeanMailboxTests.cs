using Akka.Actor;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;
using Gateway.Actors;

namespace Gateway.UnitTests.Actors;

/// <summary>The lean mailbox's queue: first in, first out, however its messages come and go.</summary>
public sealed class LeanMailboxTests
{
    private static Envelope Message(int number) => new(number, ActorRefs.NoSender);

    private static List<object> Drain(LeanMailbox.Queue queue)
    {
        var taken = new List<object>();
        while (queue.TryDequeue(out var envelope)) taken.Add(envelope.Message);
        return taken;
    }

    [Fact]
    public void An_empty_queue_has_nothing_to_give()
    {
        var queue = new LeanMailbox.Queue();

        Assert.False(queue.HasMessages);
        Assert.Equal(0, queue.Count);
        Assert.False(queue.TryDequeue(out _));
    }

    [Fact]
    public void One_message_at_a_time_comes_back_each_time()
    {
        var queue = new LeanMailbox.Queue();
        for (var i = 0; i < 3; i++)
        {
            queue.Enqueue(ActorRefs.Nobody, Message(i));
            Assert.True(queue.HasMessages);
            Assert.Equal(1, queue.Count);
            Assert.True(queue.TryDequeue(out var envelope));
            Assert.Equal(i, envelope.Message);
            Assert.False(queue.HasMessages);
        }
    }

    [Fact]
    public void Messages_that_arrive_while_others_wait_keep_their_order()
    {
        var queue = new LeanMailbox.Queue();
        queue.Enqueue(ActorRefs.Nobody, Message(1));
        queue.Enqueue(ActorRefs.Nobody, Message(2));
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal(1, first.Message);
        // Arrives after the first has gone, behind the second that still waits.
        queue.Enqueue(ActorRefs.Nobody, Message(3));
        queue.Enqueue(ActorRefs.Nobody, Message(4));
        Assert.Equal(3, queue.Count);

        Assert.Equal([2, 3, 4], Drain(queue));
        Assert.Equal(0, queue.Count);

        // Drained, it starts over.
        queue.Enqueue(ActorRefs.Nobody, Message(5));
        queue.Enqueue(ActorRefs.Nobody, Message(6));
        Assert.Equal([5, 6], Drain(queue));
    }

    [Fact]
    public void Clean_up_hands_every_waiting_message_on_in_order()
    {
        var queue = new LeanMailbox.Queue();
        for (var i = 0; i < 5; i++) queue.Enqueue(ActorRefs.Nobody, Message(i));
        var deadLetters = new UnboundedMessageQueue();

        queue.CleanUp(ActorRefs.Nobody, deadLetters);

        Assert.False(queue.HasMessages);
        var handedOn = new List<object>();
        while (deadLetters.TryDequeue(out var envelope)) handedOn.Add(envelope.Message);
        Assert.Equal([0, 1, 2, 3, 4], handedOn);
    }

    [Fact]
    public async Task Many_senders_at_once_lose_nothing_and_each_keeps_its_own_order()
    {
        var queue = new LeanMailbox.Queue();
        const int senders = 4, each = 2_000;
        var taken = new List<(int Sender, int Number)>();
        var sending = Enumerable.Range(0, senders).Select(sender => Task.Run(() =>
        {
            for (var i = 0; i < each; i++) queue.Enqueue(ActorRefs.Nobody, new Envelope((sender, i), ActorRefs.NoSender));
        })).ToArray();
        var reading = Task.Run(async () =>
        {
            while (taken.Count < senders * each)
            {
                if (queue.TryDequeue(out var envelope)) taken.Add(((int, int))envelope.Message);
                else await Task.Yield();
            }
        });

        await Task.WhenAll(sending).WaitAsync(TimeSpan.FromSeconds(30));
        await reading.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(senders * each, taken.Count);
        foreach (var group in taken.GroupBy(message => message.Sender))
            Assert.Equal(Enumerable.Range(0, each), group.Select(message => message.Number));
    }
}
