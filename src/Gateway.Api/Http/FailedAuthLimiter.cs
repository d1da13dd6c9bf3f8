using System.Net;
using Gateway.Api.Configuration;

namespace Gateway.Api.Http;

/// <summary>
/// The failed-auth rate limit (spec §3), when <c>gateway.auth.rateLimit</c> is configured: wrong
/// credentials count per client address; <c>maxAttempts</c> of them within <c>windowMs</c> lock the
/// address for <c>lockoutMs</c>. Loopback is exempt unless <c>exemptLoopback</c> is false. A success
/// resets the count.
/// </summary>
/// <remarks>
/// Memory is bounded: an entry lives only as long as its window or its lock, expired entries are
/// dropped when met or when room is needed, and the table holds at most
/// <see cref="MaxTrackedAddresses"/> addresses; when a flood of new addresses fills it, the oldest
/// unlocked entries go first. One lock guards it: every operation is a dictionary lookup.
/// </remarks>
public sealed class FailedAuthLimiter(AuthRateLimit? settings, TimeProvider time, int maxTrackedAddresses = FailedAuthLimiter.DefaultMaxTrackedAddresses)
{
    public const int DefaultMaxTrackedAddresses = 10_000;

    private readonly Dictionary<IPAddress, Entry> _entries = [];
    private readonly Lock _lock = new();

    public int MaxTrackedAddresses { get; } = maxTrackedAddresses;

    /// <summary>How many addresses are tracked now (for tests and metrics).</summary>
    public int TrackedAddresses
    {
        get
        {
            lock (_lock) return _entries.Count;
        }
    }

    /// <returns>How long the address stays locked, or null when it may try.</returns>
    public TimeSpan? LockedFor(IPAddress? address)
    {
        if (KeyOf(address) is not { } key) return null;
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var entry)) return null;
            if (entry.LockedUntil > now) return entry.LockedUntil - now;
            if (entry.IsExpired(now, settings!.Window)) _entries.Remove(key);
            return null;
        }
    }

    /// <summary>A wrong credential from <paramref name="address"/>; the one that reaches the limit starts the lockout.</summary>
    public void RecordFailure(IPAddress? address)
    {
        if (KeyOf(address) is not { } key) return;
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var entry) || entry.IsExpired(now, settings!.Window))
            {
                if (entry is null) MakeRoom(now);
                entry = new Entry(now);
                _entries[key] = entry;
            }
            if (++entry.Failures >= settings!.MaxAttempts) entry.LockedUntil = now + settings.Lockout;
        }
    }

    /// <summary>A correct credential: the address starts over.</summary>
    public void Reset(IPAddress? address)
    {
        if (KeyOf(address) is not { } key) return;
        lock (_lock) _entries.Remove(key);
    }

    /// <summary>The address as counted, or null when the limit does not apply to it.</summary>
    private IPAddress? KeyOf(IPAddress? address)
    {
        if (settings is null) return null;
        // A client without an address (not over TCP) is counted as one "unknown" client.
        var key = address is null ? IPAddress.None : address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return settings.ExemptLoopback && IPAddress.IsLoopback(key) ? null : key;
    }

    private void MakeRoom(DateTimeOffset now)
    {
        if (_entries.Count < MaxTrackedAddresses) return;
        foreach (var (key, entry) in _entries)
            if (entry.IsExpired(now, settings!.Window)) _entries.Remove(key);
        if (_entries.Count < MaxTrackedAddresses) return;
        // Still full of live entries: drop a tenth, unlocked and oldest first, so the next inserts are cheap.
        var victims = _entries
            .OrderBy(pair => pair.Value.LockedUntil > now)
            .ThenBy(pair => pair.Value.WindowStart)
            .Take(Math.Max(1, MaxTrackedAddresses / 10))
            .Select(pair => pair.Key)
            .ToList();
        foreach (var key in victims) _entries.Remove(key);
    }

    private sealed class Entry(DateTimeOffset windowStart)
    {
        public DateTimeOffset WindowStart { get; } = windowStart;

        public int Failures { get; set; }

        public DateTimeOffset LockedUntil { get; set; } = DateTimeOffset.MinValue;

        /// <summary>A lock that has run out, or a window without a lock that has: the address starts over.</summary>
        public bool IsExpired(DateTimeOffset now, TimeSpan window) =>
            LockedUntil != DateTimeOffset.MinValue ? LockedUntil <= now : now - WindowStart >= window;
    }
}
