namespace Gateway.IntegrationTests.Infrastructure;

/// <summary>Waits for a condition the server reaches asynchronously, polling with a deadline (no fixed sleeps).</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, TimeSpan within, string failure)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"{failure} (waited {within.TotalMilliseconds:N0} ms)");
            await Task.Delay(20);
        }
    }

    /// <summary><see cref="TrueAsync(Func{bool}, TimeSpan, string)"/> for a condition that must be asked for (an HTTP probe, say).</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan within, string failure)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"{failure} (waited {within.TotalMilliseconds:N0} ms)");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until <paramref name="read"/> stops changing for <paramref name="quiet"/>, and returns that value.</summary>
    public static async Task<long> StableAsync(Func<long> read, TimeSpan quiet, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        var last = read();
        var since = DateTime.UtcNow;
        while (DateTime.UtcNow - since < quiet)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"the value kept changing for {within.TotalSeconds:N0} s (last {last:N0})");
            await Task.Delay(50);
            var now = read();
            if (now == last) continue;
            last = now;
            since = DateTime.UtcNow;
        }
        return last;
    }

    /// <summary>Awaits <paramref name="task"/> but fails the test if it takes longer than <paramref name="within"/>.</summary>
    public static async Task<T> WithinAsync<T>(Task<T> task, TimeSpan within, string what)
    {
        if (await Task.WhenAny(task, Task.Delay(within)) != task) Assert.Fail($"{what}: not done within {within.TotalMilliseconds:N0} ms");
        return await task;
    }
}
