using Dashboard.App.Audit;
using Dashboard.Data;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Dashboard.App.Replicas;

/// <summary>Configuration section "Replicas": how dashboards sharing one PostgreSQL database share the singleton duties.</summary>
public sealed class ReplicaOptions
{
    public const string Section = "Replicas";

    /// <summary>This replica's name in the audit and on <c>/api/replica</c>; by default the machine's name and the process id.</summary>
    public string? Name { get; set; }

    /// <summary>How often a replica without the duties asks for them (the longest a takeover waits after the holder's end).</summary>
    public TimeSpan Retry { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the holder checks its lease's connection (a broken one ends the process: see <see cref="PostgresDutyLease"/>).</summary>
    public TimeSpan Check { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The name, or the machine's name, the process id and a random part (containers without the host's PID namespace all run as PID 1).</summary>
    public string ResolveName() => string.IsNullOrWhiteSpace(Name) ? $"{Environment.MachineName}:{Environment.ProcessId}:{Random}" : Name.Trim();

    private static readonly string Random = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
}

/// <summary>
/// The singleton duties (the run queue and its recovery, change expiry and reconciliation, the firewall history) are
/// done by one dashboard at a time. With SQLite that is the one process (<see cref="LocalDutyLease"/>); with
/// PostgreSQL every replica on the database competes for an advisory lock (<see cref="PostgresDutyLease"/>).
/// </summary>
public interface IDutyLease
{
    /// <summary>This replica's name.</summary>
    string Replica { get; }

    /// <summary>Whether other replicas may hold the duties (PostgreSQL), or this process always does (SQLite).</summary>
    bool Shared { get; }

    /// <summary>Since when this replica holds the duties; null while another does (or none can be asked).</summary>
    DateTimeOffset? HeldSince { get; }

    /// <summary>Completes once this replica holds the duties (at once with SQLite).</summary>
    Task WaitAsync(CancellationToken ct);
}

/// <summary>One process, one database file: the duties are this process's from the start.</summary>
public sealed class LocalDutyLease(IOptions<ReplicaOptions> options) : IDutyLease
{
    public string Replica { get; } = options.Value.ResolveName();

    public bool Shared => false;

    public DateTimeOffset? HeldSince { get; } = DateTimeOffset.UtcNow;

    public Task WaitAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>
/// The duties' lease on PostgreSQL: a session-level advisory lock (per database) held on a connection of its own,
/// outside the pool. A replica without it asks every <see cref="ReplicaOptions.Retry"/>; the server releases it the
/// moment the holder's connection ends (the process stopped or was killed: its socket closes), so a takeover waits at
/// most that long. The holder checks its connection every <see cref="ReplicaOptions.Check"/>; when the check fails it
/// can no longer know that the lock is still its own, so it stops the process rather than go on beside a new holder
/// (a supervisor restarts it, and it queues for the lease again). A holder whose machine vanished without closing its
/// socket keeps the lock until the server's TCP keepalive ends that session (PostgreSQL's tcp_keepalives_* settings).
/// Taking the duties is audited; giving them up is logged. Between a lost connection and its check a new holder may
/// already act: runs are claimed in the database before they start (RunService), so none starts twice.
/// </summary>
public sealed class PostgresDutyLease(IOptions<DataOptions> data, IOptions<ReplicaOptions> options, AuditLog audit, IHostApplicationLifetime lifetime, ILogger<PostgresDutyLease> logger) : BackgroundService, IDutyLease
{
    /// <summary>The advisory lock's key ("netlabdu"), distinct from start-up's (<c>ReplicaStartup.LockKey</c>).</summary>
    public const long LockKey = 0x6E65746C61626475;

    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _heldSinceTicks;

    public string Replica { get; } = options.Value.ResolveName();

    public bool Shared => true;

    public DateTimeOffset? HeldSince => Interlocked.Read(ref _heldSinceTicks) is var t and not 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    public Task WaitAsync(CancellationToken ct) => _held.Task.WaitAsync(ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var waitingSince = DateTimeOffset.UtcNow;
        NpgsqlConnection? connection = null;
        var said = false;
        try
        {
            while (true)
            {
                try
                {
                    connection ??= await OpenAsync(stoppingToken).ConfigureAwait(false);
                    await using var ask = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LockKey})", connection);
                    if (await ask.ExecuteScalarAsync(stoppingToken).ConfigureAwait(false) is true)
                    {
                        break;
                    }

                    if (!said)
                    {
                        logger.LogInformation("replica {Replica}: another replica holds the singleton duties; asking every {Retry}", Replica, options.Value.Retry);
                        said = true;
                    }
                }
                catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
                {
                    logger.LogWarning("replica {Replica}: the duties' lease cannot be asked for: {Error}", Replica, ex.Message);
                    if (connection is not null)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                    }
                }

                await Task.Delay(options.Value.Retry, stoppingToken).ConfigureAwait(false);
            }

            var now = DateTimeOffset.UtcNow;
            Interlocked.Exchange(ref _heldSinceTicks, now.UtcTicks);
            var waited = now - waitingSince;
            logger.LogWarning("replica {Replica} holds the singleton duties (asked for them {Waited:0.0} s)", Replica, waited.TotalSeconds);
            _held.TrySetResult();
            try
            {
                await audit.WriteAsync(Dashboard.App.Access.Actor.System, "replica.duties-taken", $"replica {Replica}", $"replica '{Replica}' holds the singleton duties (run queue, change expiry and reconciliation, firewall history) after asking for {waited.TotalSeconds:0.0} s", ct: CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is Microsoft.EntityFrameworkCore.DbUpdateException or NpgsqlException or InvalidOperationException)
            {
                logger.LogError("replica {Replica}: taking the duties could not be audited: {Error}", Replica, ex.Message);
            }

            while (true)
            {
                await Task.Delay(options.Value.Check, stoppingToken).ConfigureAwait(false);
                try
                {
                    await using var check = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = Math.Max(1, (int)options.Value.Check.TotalSeconds) };
                    await check.ExecuteScalarAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
                {
                    Interlocked.Exchange(ref _heldSinceTicks, 0);
                    logger.LogCritical("replica {Replica}: the duties' lease connection failed ({Error}); the lock may be another replica's now, so this process stops", Replica, ex.Message);
                    Environment.ExitCode = 3;
                    lifetime.StopApplication();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (connection is not null)
            {
                // Closing the session releases the lock at once; the next replica takes over at its next ask.
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            if (HeldSince is not null)
            {
                logger.LogWarning("replica {Replica} gave up the singleton duties", Replica);
            }
        }
    }

    private sealed record HolderRead(long At, string? Holder);

    private HolderRead? _holder;

    /// <summary>The replica holding the duties on this database (from its session's name; read at most once a second), or null when none does.</summary>
    public async Task<string?> HolderAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _holder) is { } cached && Environment.TickCount64 - cached.At < 1000)
        {
            return cached.Holder;
        }

        var holder = await ReadHolderAsync(ct).ConfigureAwait(false);
        Volatile.Write(ref _holder, new HolderRead(Environment.TickCount64, holder));
        return holder;
    }

    private async Task<string?> ReadHolderAsync(CancellationToken ct)
    {
        try
        {
            await using var connection = new NpgsqlConnection(data.Value.ResolveConnectionString());
            await connection.OpenAsync(ct).ConfigureAwait(false);
            // A bigint advisory key is (classid, objid) = (high, low) 32 bits, objsubid 1.
            await using var find = new NpgsqlCommand(
                """
                SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid::bigint = @high AND l.objid::bigint = @low
                """, connection);
            find.Parameters.AddWithValue("high", LockKey >> 32);
            find.Parameters.AddWithValue("low", LockKey & 0xFFFFFFFF);
            return await find.ExecuteScalarAsync(ct).ConfigureAwait(false) is string name && name.StartsWith(SessionPrefix, StringComparison.Ordinal) ? name[SessionPrefix.Length..] : null;
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    private const string SessionPrefix = "netlab duties ";

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        // Its own session, never a pooled one (the lock belongs to the session), named so pg_stat_activity shows whose it is.
        var builder = new NpgsqlConnectionStringBuilder(data.Value.ResolveConnectionString())
        {
            Pooling = false,
            ApplicationName = SessionPrefix + Replica,
            KeepAlive = 5,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        return connection;
    }
}
