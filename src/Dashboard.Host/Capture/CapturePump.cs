using Dashboard.Core.Capture;

namespace Dashboard.Host.Capture;

/// <summary>
/// Moves a session's packets to its viewers in batches: every <c>interval</c> whatever was read is handed over, at most
/// the session's budget of packets whole and the rest counted per flow (<see cref="PacketTally"/>). Nothing waits in
/// between and nothing is dropped: a viewer that is slow gets larger counts, not fewer packets accounted for.
/// </summary>
public static class CapturePump
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Runs until the session ends and its last packets are delivered; <paramref name="deliver"/> is called once more with <c>final</c> true.</summary>
    public static async Task RunAsync(CaptureSession session, Func<PacketBatch, bool, ValueTask> deliver, TimeSpan? interval = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(deliver);
        using var timer = new PeriodicTimer(interval ?? DefaultInterval);
        try
        {
            while (!session.Completion.IsCompleted && await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var batch = session.TakeBatch();
                if (batch.Total > 0)
                {
                    await deliver(batch, false).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        await session.Completion.ConfigureAwait(false);
        await deliver(session.TakeBatch(), true).ConfigureAwait(false);
    }
}
