using Akka.Actor;
using Gateway.Actors.Sessions;

namespace Gateway.UnitTests.Actors;

public sealed class RunSlotsSpec : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public async Task Slots_are_granted_up_to_the_cap_and_then_in_arrival_order()
    {
        var slots = Sys.ActorOf(RunSlotsActor.Props(2, maxWaiting: 8));
        var (a, b, c) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());

        slots.Tell(new AcquireRunSlot("a1"), a);
        slots.Tell(new AcquireRunSlot("b1"), b);
        slots.Tell(new AcquireRunSlot("c1"), c);

        await a.ExpectMsgAsync(new RunSlotGranted("a1"));
        await b.ExpectMsgAsync(new RunSlotGranted("b1"));
        await c.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));

        slots.Tell(new ReleaseRunSlot("a1"), a);
        await c.ExpectMsgAsync(new RunSlotGranted("c1"));
    }

    [Fact]
    public async Task A_withdrawn_request_is_never_granted()
    {
        var slots = Sys.ActorOf(RunSlotsActor.Props(1, maxWaiting: 8));
        var (a, b, c) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        slots.Tell(new AcquireRunSlot("a1"), a);
        await a.ExpectMsgAsync(new RunSlotGranted("a1"));
        slots.Tell(new AcquireRunSlot("b1"), b);
        slots.Tell(new AcquireRunSlot("c1"), c);

        slots.Tell(new ReleaseRunSlot("b1"), b);
        slots.Tell(new ReleaseRunSlot("a1"), a);

        await c.ExpectMsgAsync(new RunSlotGranted("c1"));
        await b.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task A_session_that_stops_gives_back_its_slot()
    {
        var slots = Sys.ActorOf(RunSlotsActor.Props(1, maxWaiting: 8));
        var (a, b) = (CreateTestProbe(), CreateTestProbe());
        slots.Tell(new AcquireRunSlot("a1"), a);
        await a.ExpectMsgAsync(new RunSlotGranted("a1"));
        slots.Tell(new AcquireRunSlot("b1"), b);

        Sys.Stop(a.Ref);

        await b.ExpectMsgAsync(new RunSlotGranted("b1"));
        slots.Tell(GetRunSlots.Instance, TestActor);
        await ExpectMsgAsync(new RunSlots(1, 0));
    }

    [Fact]
    public async Task Requests_beyond_the_waiting_bound_are_refused_and_a_freed_place_is_taken_again()
    {
        var slots = Sys.ActorOf(RunSlotsActor.Props(1, maxWaiting: 1));
        var (a, b, c, d) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        slots.Tell(new AcquireRunSlot("a1"), a);
        await a.ExpectMsgAsync(new RunSlotGranted("a1"));
        slots.Tell(new AcquireRunSlot("b1"), b);

        slots.Tell(new AcquireRunSlot("c1"), c);
        await c.ExpectMsgAsync(new RunSlotRefused("c1"));

        slots.Tell(new ReleaseRunSlot("a1"), a);
        await b.ExpectMsgAsync(new RunSlotGranted("b1"));
        slots.Tell(new AcquireRunSlot("d1"), d);
        slots.Tell(GetRunSlots.Instance, TestActor);
        await ExpectMsgAsync(new RunSlots(1, 1));
    }
}
