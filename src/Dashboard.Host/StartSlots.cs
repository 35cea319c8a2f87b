namespace Dashboard.Host;

/// <summary>
/// Caps how many sessions (captures, traces) run at once when starts arrive together: a start takes a slot in the same
/// step as it counts the running ones, holds it while it starts (awaits included), and gives it back as soon as the
/// session is listed as running (else it would count twice and refuse starts that fit) or the start failed.
/// Check-then-act across an await would let parallel requests all pass.
/// </summary>
public sealed class StartSlots(int capacity)
{
    private readonly Lock _gate = new();
    private int _starting;

    public int Capacity { get; } = capacity;

    /// <summary>A slot, or null when <paramref name="running"/> plus the starts under way already fill the capacity.</summary>
    public IDisposable? TryTake(Func<int> running)
    {
        ArgumentNullException.ThrowIfNull(running);
        lock (_gate)
        {
            if (running() + _starting >= Capacity)
            {
                return null;
            }

            _starting++;
            return new Slot(this);
        }
    }

    private sealed class Slot(StartSlots owner) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                lock (owner._gate)
                {
                    owner._starting--;
                }
            }
        }
    }
}
