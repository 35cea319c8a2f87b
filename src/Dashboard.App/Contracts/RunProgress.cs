using Dashboard.Data.Entities;

namespace Dashboard.App.Contracts;

/// <summary>Where a run is: its step, how far along (0-1), whether it has ended; <see cref="LabId"/> decides who receives it live.</summary>
public sealed record RunProgress(Guid RunId, string Step, double Fraction, RunStatus Status, IReadOnlyList<string> Steps, int LabId = 0);
