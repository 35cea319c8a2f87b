namespace Dashboard.Host.Capture;

/// <summary>
/// A capture as its viewers see it, wherever it runs: here (<see cref="CaptureSession"/>, tcpdump in this process's
/// care) or on another host, whose agent runs it and sends its batches.
/// </summary>
public interface ICaptureSession
{
    string Id { get; }

    CaptureRequest Request { get; }

    DateTimeOffset StartedAt { get; }

    DateTimeOffset? EndedAt { get; }

    CaptureEndReason EndReason { get; }

    /// <summary>What explains the end, when something does.</summary>
    string? EndMessage { get; }

    CaptureStats Stats { get; }

    /// <summary>Completes when the capture has ended and its last packets are in.</summary>
    Task Completion { get; }
}
