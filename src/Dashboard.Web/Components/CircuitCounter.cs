using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Dashboard.Web.Components;

/// <summary>Counts the interactive circuits this process holds (open and disconnected-but-retained), for <c>/api/diagnostics</c>.</summary>
public sealed class CircuitCounter : CircuitHandler
{
    private static int _open;

    public static int Open => Volatile.Read(ref _open);

    public override Task OnCircuitOpenedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _open);
        return Task.CompletedTask;
    }

    public override Task OnCircuitClosedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        Interlocked.Decrement(ref _open);
        return Task.CompletedTask;
    }
}
