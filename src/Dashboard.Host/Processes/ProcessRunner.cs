using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Dashboard.Host.Processes;

public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The first line of stderr, or of stdout when stderr is empty: what to show a person.</summary>
    public string Message => (StdErr.Length > 0 ? StdErr : StdOut).Split('\n', 2)[0].Trim();
}

/// <summary>A program could not be started (not installed, not executable) or ran past its time.</summary>
public sealed class ProcessFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Runs host programs. Always an argument list, never a shell string.</summary>
public interface IProcessRunner
{
    Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Runs with <paramref name="standardInput"/> written to the process's stdin (e.g. <c>iptables-restore --noflush</c>).</summary>
    Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default);
}

/// <summary>
/// Starts a process with <see cref="ProcessStartInfo.ArgumentList"/>, collects output up to a bound, and kills the
/// whole process tree on timeout or cancellation so nothing is left running.
/// </summary>
public sealed class ProcessRunner : IProcessRunner
{
    /// <summary>Output beyond this is cut (and said so): a 10,000-rule iptables-save is about 1 MB.</summary>
    public const int MaxOutputChars = 64 * 1024 * 1024;

    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        RunCoreAsync(fileName, arguments, null, timeout, cancellationToken);

    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        RunCoreAsync(fileName, arguments, standardInput, timeout, cancellationToken);

    private static async Task<ProcessResult> RunCoreAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["LC_ALL"] = "C";
        using var process = new Process { StartInfo = psi };
        var sw = Stopwatch.StartNew();
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            throw new ProcessFailedException($"cannot start '{fileName}': {ex.Message}", ex);
        }

        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        if (standardInput is not null)
        {
            var writer = process.StandardInput;
            _ = WriteInputAsync(writer, standardInput, timeoutCts.Token);
        }

        var stdout = ReadBoundedAsync(process.StandardOutput, timeoutCts.Token);
        var stderr = ReadBoundedAsync(process.StandardError, timeoutCts.Token);
        try
        {
            await process.WaitForExitAsync(timeoutCts.Token).ConfigureAwait(false);
            var output = await stdout.ConfigureAwait(false);
            var error = await stderr.ConfigureAwait(false);
            return new ProcessResult(process.ExitCode, output, error, sw.Elapsed);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            cancellationToken.ThrowIfCancellationRequested();
            throw new ProcessFailedException($"'{fileName}' did not finish within {timeout.TotalSeconds:0.#} s and was stopped");
        }
    }

    private static async Task WriteInputAsync(StreamWriter writer, string input, CancellationToken ct)
    {
        try
        {
            await writer.WriteAsync(input.AsMemory(), ct).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The process exited before reading all of it; its exit code says why.
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            writer.Close();
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static async Task<string> ReadBoundedAsync(StreamReader reader, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var buffer = new char[64 * 1024];
        int n;
        while ((n = await reader.ReadAsync(buffer.AsMemory(), ct).ConfigureAwait(false)) > 0)
        {
            if (sb.Length + n > MaxOutputChars)
            {
                sb.Append(buffer, 0, Math.Max(0, MaxOutputChars - sb.Length));
                sb.Append("\n[output cut at ").Append(MaxOutputChars).Append(" characters]");
                while (await reader.ReadAsync(buffer.AsMemory(), ct).ConfigureAwait(false) > 0)
                {
                    // Drain so the child does not block on a full pipe.
                }

                break;
            }

            sb.Append(buffer, 0, n);
        }

        return sb.ToString();
    }
}
