using Dashboard.Core.Capture;

namespace Dashboard.Host.Capture;

/// <summary>
/// Moves a session's decoded packets to its viewers in batches: every <c>interval</c> whatever arrived is handed over,
/// at most <c>maxShown</c> packets whole and the rest counted per flow (<see cref="PacketBatcher"/>). The channel is
/// emptied on every tick, so the pipeline only drops (and counts) when more than its capacity arrives in one interval.
/// </summary>
public static class CapturePump
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Runs until the session ends and its last packets are delivered; <paramref name="deliver"/> is called once more with <c>final</c> true.</summary>
    public static async Task RunAsync(CaptureSession session, Func<PacketBatch, bool, ValueTask> deliver, TimeSpan? interval = null, int maxShown = PacketBatcher.DefaultMaxShown, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(deliver);
        var batcher = new PacketBatcher(maxShown);
        var reader = session.Packets;
        using var timer = new PeriodicTimer(interval ?? DefaultInterval);
        try
        {
            while (!reader.Completion.IsCompleted && await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                while (reader.TryRead(out var p))
                {
                    batcher.Add(p);
                }

                if (batcher.Pending > 0)
                {
                    await deliver(batcher.Take(), false).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        await session.Completion.ConfigureAwait(false);
        while (reader.TryRead(out var p))
        {
            batcher.Add(p);
        }

        await deliver(batcher.Take(), true).ConfigureAwait(false);
    }
}
