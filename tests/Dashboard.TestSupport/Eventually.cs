using Xunit;

namespace Dashboard.TestSupport;

/// <summary>Waiting in tests for what another process or thread makes true, checked every 100 ms up to a bound, failing with what was awaited.</summary>
public static class Eventually
{
    public static async Task UntilAsync(Func<Task<bool>> condition, Func<string> what, int seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out waiting for " + what());
            await Task.Delay(100);
        }
    }

    public static Task UntilAsync(Func<bool> condition, string what, int seconds = 20) =>
        UntilAsync(() => Task.FromResult(condition()), () => what, seconds);

    /// <summary>The first value <paramref name="probe"/> gives (null: not yet).</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T?>> probe, string what, int seconds = 20)
        where T : struct
    {
        T? value = null;
        await UntilAsync(async () => (value = await probe()) is not null, () => what, seconds);
        return value!.Value;
    }
}
