namespace Dashboard.App.Runs;

/// <summary>The run queue is full: nothing was queued; try again when runs have finished.</summary>
public sealed class RunQueueFullException(int capacity) : Exception($"{capacity} runs are already waiting: try again when some have finished");
