using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Netfilter;

/// <summary>A ruleset read from the host, with how long the read took and what could not be read.</summary>
public sealed record FirewallSnapshot(Ruleset Ruleset, DateTimeOffset ReadAt, TimeSpan Duration, IReadOnlyList<string> Commands, IReadOnlyList<string> Warnings)
{
    /// <summary>The tool's output as read (iptables-save text, or nft JSON), for keeping with a run.</summary>
    public string RawText { get; init; } = "";

    /// <summary>ip6tables-save's output when it was read and not empty.</summary>
    public string? RawIpv6Text { get; init; }

    /// <summary>CPU time this process spent parsing the output (the tools' own CPU is the reaped children's).</summary>
    public TimeSpan ParseCpu { get; init; }
}

/// <summary>The host's firewall could not be read at all (program missing, not permitted, unreadable output).</summary>
public sealed class FirewallUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Reads the whole ruleset with counters: <c>iptables-save -c</c> and <c>ip6tables-save -c</c> on iptables hosts (nft or legacy),
/// <c>nft -j list ruleset</c> on Docker's nftables backend.
/// </summary>
public sealed class HostFirewallReader(IProcessRunner runner, IOptions<DockerHostOptions> options)
{
    private readonly DockerHostOptions _options = options.Value;
    private bool _ipv6Empty;
    private long _ipv6CheckedAt; // Stopwatch timestamp (monotonic)
    private readonly SharedCache _v4 = new();
    private readonly SharedCache _v6 = new();

    /// <summary>While ip6tables-save prints nothing, it is asked again only this often (a process start per read is most of a read's cost).</summary>
    public static readonly TimeSpan EmptyIpv6Recheck = TimeSpan.FromSeconds(5);

    public async Task<FirewallSnapshot> ReadAsync(FirewallBackend backend, CancellationToken ct = default)
    {
        var started = DateTimeOffset.UtcNow;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var warnings = new List<string>();
        var cpu = TimeSpan.Zero;
        if (backend == FirewallBackend.Nftables)
        {
            var nft = await RunAsync(_options.Nft, ["-j", "list", "ruleset"], ct).ConfigureAwait(false);
            return new FirewallSnapshot(Parse(() => NftJsonReader.Read(nft), "nft -j list ruleset", ref cpu), started, sw.Elapsed, ["nft -j list ruleset"], warnings) { RawText = nft, ParseCpu = cpu };
        }

        var v4 = await RunAsync(_options.IptablesSave, ["-c"], ct).ConfigureAwait(false);
        var ruleset = Parse(() => _v4.Read(v4, TableFamily.Ipv4), "iptables-save -c", ref cpu);
        var commands = new List<string> { $"{_options.IptablesSave} -c" };
        if (_ipv6Empty && System.Diagnostics.Stopwatch.GetElapsedTime(_ipv6CheckedAt) < EmptyIpv6Recheck)
        {
            return new FirewallSnapshot(ruleset, started, sw.Elapsed, commands, warnings) { RawText = v4, ParseCpu = cpu };
        }

        string? raw6 = null;

        try
        {
            var v6 = await RunAsync(_options.Ip6tablesSave, ["-c"], ct).ConfigureAwait(false);
            _ipv6CheckedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            _ipv6Empty = string.IsNullOrWhiteSpace(v6);
            if (!_ipv6Empty)
            {
                var six = Parse(() => _v6.Read(v6, TableFamily.Ipv6), "ip6tables-save -c", ref cpu);
                ruleset = new Ruleset { Format = ruleset.Format, Generator = ruleset.Generator, Tables = [.. ruleset.Tables, .. six.Tables] };
                raw6 = v6;
                commands.Add($"{_options.Ip6tablesSave} -c");
            }
        }
        catch (FirewallUnavailableException ex)
        {
            warnings.Add($"IPv6 rules not read: {ex.Message}");
        }

        return new FirewallSnapshot(ruleset, started, sw.Elapsed, commands, warnings) { RawText = v4, RawIpv6Text = raw6, ParseCpu = cpu };
    }

    private async Task<string> RunAsync(string program, IReadOnlyList<string> args, CancellationToken ct)
    {
        ProcessResult result;
        try
        {
            result = await runner.RunAsync(program, args, _options.CommandTimeout, ct).ConfigureAwait(false);
        }
        catch (ProcessFailedException ex)
        {
            throw new FirewallUnavailableException(ex.Message, ex);
        }

        if (!result.Succeeded)
        {
            var why = result.Message;
            var hint = why.Contains("Permission denied", StringComparison.OrdinalIgnoreCase) || why.Contains("you must be root", StringComparison.OrdinalIgnoreCase)
                ? " (the dashboard needs root or CAP_NET_ADMIN to read the firewall)"
                : "";
            throw new FirewallUnavailableException($"{program} {string.Join(' ', args)} failed with exit code {result.ExitCode}: {why}{hint}");
        }

        return result.StdOut;
    }

    private static Ruleset Parse(Func<Ruleset> read, string what, ref TimeSpan cpu)
    {
        try
        {
            return CpuTime.Measure(read, ref cpu);
        }
        catch (RulesetFormatException ex)
        {
            throw new FirewallUnavailableException($"{what} printed something this dashboard cannot read ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// The parse cache of one family, for whichever read gets it first: the collector reads every quarter second, a run or
    /// a fresh API read now and then; a read that finds it taken parses without it (same result, full cost).
    /// </summary>
    private sealed class SharedCache
    {
        private readonly IptablesParseCache _cache = new();
        private int _taken;

        public Ruleset Read(string text, TableFamily family)
        {
            if (Interlocked.Exchange(ref _taken, 1) != 0)
            {
                return IptablesSaveReader.Read(text, family);
            }

            try
            {
                return IptablesSaveReader.Read(text, family, _cache);
            }
            finally
            {
                Volatile.Write(ref _taken, 0);
            }
        }
    }
}
