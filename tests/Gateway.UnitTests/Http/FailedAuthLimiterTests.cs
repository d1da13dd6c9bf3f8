using System.Net;
using Gateway.Api.Configuration;
using Gateway.Api.Http;

namespace Gateway.UnitTests.Http;

/// <summary>The failed-auth rate limit's counting, expiry and memory bound (spec §3), on a clock the test moves.</summary>
public sealed class FailedAuthLimiterTests
{
    private static readonly IPAddress Client = IPAddress.Parse("203.0.113.7");
    private readonly ManualClock _clock = new();

    private FailedAuthLimiter Limiter(int maxAttempts = 3, int windowMs = 60_000, int lockoutMs = 300_000, bool exemptLoopback = true, int capacity = 10_000) =>
        new(new AuthRateLimit(maxAttempts, TimeSpan.FromMilliseconds(windowMs), TimeSpan.FromMilliseconds(lockoutMs), exemptLoopback), _clock, capacity);

    [Fact]
    public void MaxAttempts_failures_within_the_window_lock_the_address_for_lockoutMs()
    {
        var limiter = Limiter();
        limiter.RecordFailure(Client);
        limiter.RecordFailure(Client);
        Assert.Null(limiter.LockedFor(Client));

        limiter.RecordFailure(Client);

        Assert.Equal(TimeSpan.FromMinutes(5), limiter.LockedFor(Client));
        _clock.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(TimeSpan.FromMinutes(1), limiter.LockedFor(Client));
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(limiter.LockedFor(Client));
    }

    [Fact]
    public void After_a_lockout_the_count_starts_over()
    {
        var limiter = Limiter(maxAttempts: 2, lockoutMs: 1_000);
        limiter.RecordFailure(Client);
        limiter.RecordFailure(Client);
        _clock.Advance(TimeSpan.FromSeconds(1));

        limiter.RecordFailure(Client);

        Assert.Null(limiter.LockedFor(Client));
    }

    [Fact]
    public void Failures_further_apart_than_the_window_never_lock()
    {
        var limiter = Limiter(maxAttempts: 2, windowMs: 1_000);

        for (var i = 0; i < 10; i++)
        {
            limiter.RecordFailure(Client);
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Null(limiter.LockedFor(Client));
    }

    [Fact]
    public void A_success_resets_the_count()
    {
        var limiter = Limiter(maxAttempts: 2);
        limiter.RecordFailure(Client);
        limiter.Reset(Client);
        limiter.RecordFailure(Client);

        Assert.Null(limiter.LockedFor(Client));
    }

    [Fact]
    public void Addresses_are_counted_apart()
    {
        var limiter = Limiter(maxAttempts: 1);

        limiter.RecordFailure(Client);

        Assert.NotNull(limiter.LockedFor(Client));
        Assert.Null(limiter.LockedFor(IPAddress.Parse("203.0.113.8")));
    }

    [Fact]
    public void An_IPv4_address_mapped_to_IPv6_is_the_same_client()
    {
        var limiter = Limiter(maxAttempts: 1);

        limiter.RecordFailure(Client.MapToIPv6());

        Assert.NotNull(limiter.LockedFor(Client));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("::ffff:127.0.0.1")]
    public void Loopback_is_exempt_unless_told_otherwise(string address)
    {
        var loopback = IPAddress.Parse(address);
        var exempt = Limiter(maxAttempts: 1);
        var counted = Limiter(maxAttempts: 1, exemptLoopback: false);

        exempt.RecordFailure(loopback);
        counted.RecordFailure(loopback);

        Assert.Null(exempt.LockedFor(loopback));
        Assert.NotNull(counted.LockedFor(loopback));
    }

    [Fact]
    public void Without_a_rateLimit_section_nothing_is_counted()
    {
        var limiter = new FailedAuthLimiter(null, _clock);

        for (var i = 0; i < 100; i++) limiter.RecordFailure(Client);

        Assert.Null(limiter.LockedFor(Client));
        Assert.Equal(0, limiter.TrackedAddresses);
    }

    [Fact]
    public void A_flood_of_addresses_never_grows_the_table_past_its_cap()
    {
        var limiter = Limiter(maxAttempts: 5, capacity: 1_000);

        for (var i = 0; i < 20_000; i++) limiter.RecordFailure(new IPAddress(0x0A000000u + (uint)i));

        Assert.InRange(limiter.TrackedAddresses, 1, 1_000);
    }

    [Fact]
    public void A_flood_evicts_counting_addresses_before_locked_ones()
    {
        var flood = Limiter(maxAttempts: 2, capacity: 100);
        flood.RecordFailure(Client);
        flood.RecordFailure(Client);

        for (var i = 0; i < 1_000; i++) flood.RecordFailure(new IPAddress(0x0A000000u + (uint)i));

        Assert.NotNull(flood.LockedFor(Client));
    }

    [Fact]
    public void Expired_entries_are_dropped_to_make_room()
    {
        var limiter = Limiter(maxAttempts: 5, windowMs: 1_000, capacity: 100);
        for (var i = 0; i < 100; i++) limiter.RecordFailure(new IPAddress(0x0A000000u + (uint)i));
        _clock.Advance(TimeSpan.FromSeconds(2));

        limiter.RecordFailure(Client);

        Assert.Equal(1, limiter.TrackedAddresses);
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
