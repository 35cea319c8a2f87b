using Dashboard.Core.Capture;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Runs;

/// <summary>
/// A run's stored packets: decoded from its pcaps (when the run records them, when an archive is imported, and for rows
/// kept before the header fields were stored), and turned back into decoded packets for analysis and views.
/// </summary>
public static class RunPackets
{
    /// <summary>Packets kept decoded per capture; the pcap holds all of them.</summary>
    public const int MaxStoredPerCapture = 10_000;

    public static RunPacket ToRow(Guid runId, string iface, DecodedPacket p) => new()
    {
        RunId = runId,
        Interface = iface,
        Timestamp = p.Timestamp,
        Length = p.Length,
        Protocol = p.Protocol,
        Source = p.Source,
        Destination = p.Destination,
        Summary = p.Summary,
        Decoded = true,
        EtherType = p.EtherType,
        IpProtocol = p.IpProtocol,
        SourcePort = p.SourcePort,
        DestinationPort = p.DestinationPort,
        IcmpType = p.IcmpType,
        IcmpCode = p.IcmpCode,
        IcmpId = p.Echo?.Id,
        IcmpSequence = p.Echo?.Sequence,
        TcpFlags = p.TcpFlags,
    };

    public static DecodedPacket ToDecoded(RunPacket r) =>
        new(r.Timestamp, r.Length, r.Protocol, r.Source, r.Destination, r.SourcePort, r.DestinationPort, null, null,
            r.IpProtocol == 1 && r.IcmpType is 8 or 0 && r.IcmpId is { } id ? new IcmpEcho(r.IcmpType == 8, id, r.IcmpSequence ?? 0) : null,
            r.Summary)
        {
            EtherType = r.EtherType,
            IpProtocol = r.IpProtocol,
            IcmpType = r.IcmpType,
            IcmpCode = r.IcmpCode,
            TcpFlags = r.TcpFlags,
        };

    /// <summary>Reads a pcap whole: every record counted, the first <paramref name="max"/> decoded as rows.</summary>
    public static async Task<(long Total, List<RunPacket> Rows)> DecodeAsync(Stream pcap, Guid runId, string iface, int max = MaxStoredPerCapture, CancellationToken ct = default)
    {
        var rows = new List<RunPacket>();
        long total = 0;
        var reader = new PcapStreamReader(pcap);
        if (await reader.ReadHeaderAsync(ct) is not { } header)
        {
            return (0, rows);
        }

        while (await reader.ReadRecordAsync(ct) is { } record)
        {
            total++;
            if (rows.Count < max)
            {
                rows.Add(ToRow(runId, iface, PacketDecoder.Decode(record, header.LinkType)));
            }
        }

        return (total, rows);
    }

    /// <summary>
    /// Rows kept before the header fields were stored are decoded again from their run's pcaps, so analysis never falls
    /// back to reading summaries. A run whose pcap is gone keeps its rows as they are (shown, never NAT evidence).
    /// </summary>
    public static async Task<int> DecodeLegacyRowsAsync(DashboardDbContext db, string dataDirectory, ILogger logger, CancellationToken ct = default)
    {
        var runs = await db.RunPackets.Where(p => !p.Decoded).Select(p => p.RunId).Distinct().ToListAsync(ct);
        var done = 0;
        foreach (var run in runs)
        {
            var captures = await db.RunCaptures.Where(c => c.RunId == run).ToListAsync(ct);
            foreach (var c in captures)
            {
                var path = c.PcapFile is { } f ? Path.Combine(dataDirectory, f) : null;
                if (path is null || !File.Exists(path))
                {
                    continue;
                }

                try
                {
                    await using var stream = File.OpenRead(path);
                    var (_, rows) = await DecodeAsync(stream, run, c.Interface, ct: ct);
                    await using var tx = await db.Database.BeginTransactionAsync(ct);
                    await db.RunPackets.Where(p => p.RunId == run && p.Interface == c.Interface).ExecuteDeleteAsync(ct);
                    db.RunPackets.AddRange(rows);
                    await db.SaveChangesAsync(ct);
                    await tx.CommitAsync(ct);
                    db.ChangeTracker.Clear();
                    done++;
                }
                catch (Exception ex) when (ex is IOException or InvalidDataException)
                {
                    logger.LogWarning("run {Run}: pcap {File} could not be decoded again ({Error}); its packets stay summary-only", run, c.PcapFile, ex.Message);
                }
            }
        }

        return done;
    }
}
