using System.Globalization;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using System.Net.Http.Json;

namespace Dashboard.Web.Tests.Data;

/// <summary>
/// The two providers side by side: each database made from empty by its own migrations, the audit's triggers, moments
/// ordered and compared as instants whatever their offset, and the move of a SQLite installation into PostgreSQL.
/// (The rest of the data tests run on PostgreSQL too: scripts/test.sh's second pass with NETLAB_TEST_PROVIDER=postgres.)
/// </summary>
public sealed class ProviderTests(Xunit.Abstractions.ITestOutputHelper log)
{
    public static TheoryData<string> Providers => new() { DataOptions.Sqlite, DataOptions.Postgres };

    [Theory]
    [InlineData("mysql", "Data:Provider is 'mysql': it must be 'sqlite' or 'postgres'")]
    [InlineData("postgres", "Data:ConnectionString is required with Data:Provider=postgres")]
    public void Startup_ProviderMisconfigured_RefusesToStartNamingTheSetting(string provider, string message)
    {
        using var factory = new DashboardFactory(new() { ["Data:Provider"] = provider, ["Data:ConnectionString"] = "" }, provider: DataOptions.Sqlite);
        var error = Assert.ThrowsAny<Exception>(() => factory.Server);
        Assert.Contains(message, error.GetBaseException().Message, StringComparison.Ordinal);
    }

    /// <summary>A model change without its migration in both assemblies fails here (nothing is contacted).</summary>
    [Theory]
    [MemberData(nameof(Providers))]
    public void Model_EveryChangeHasItsMigrationInThatProvidersAssembly(string provider)
    {
        using var db = new DashboardDbContext(ServiceCollectionExtensions.ContextOptions(provider, provider == DataOptions.Postgres ? "Host=/nonexistent;Database=netlab_none" : "Data Source=:memory:"));
        Assert.False(db.Database.HasPendingModelChanges(), $"the model changed without a migration in {(provider == DataOptions.Postgres ? ServiceCollectionExtensions.PostgresMigrationsAssembly : ServiceCollectionExtensions.MigrationsAssembly)} (migrations/*/README.md)");
        Assert.Contains(db.Database.GetMigrations(), m => m.EndsWith(provider == DataOptions.Postgres ? "_AuditAppendOnly" : "_TeamLabs", StringComparison.Ordinal));
    }

    [SkippableTheory]
    [MemberData(nameof(Providers))]
    public async Task EmptyDatabase_StartUpAppliesEveryMigrationOfItsProvider_AndTheAuditRefusesEditsInTheDatabase(string provider)
    {
        // With PostgreSQL the factory makes a database of its own (a skip, or with LAB_REQUIRE_DOCKER=1 a failure, without a server).
        using var factory = new DashboardFactory(provider: provider);
        _ = factory.Server;
        await using var scope = factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        Assert.Equal(provider == DataOptions.Postgres ? "Npgsql.EntityFrameworkCore.PostgreSQL" : "Microsoft.EntityFrameworkCore.Sqlite", db.Database.ProviderName);
        var all = db.Database.GetMigrations().ToList();
        Assert.NotEmpty(all);
        Assert.Equal(all, await db.Database.GetAppliedMigrationsAsync());
        Assert.True(await db.Labs.AnyAsync());

        // The administrator made from configuration left audit entries; the database itself refuses to change them.
        // (Counts are not compared: the start-up reconciliation may write its own entry at any moment of this test.)
        var first = await db.AuditEntries.MinAsync(e => e.Id);
        var detail = await db.AuditEntries.Where(e => e.Id == first).Select(e => e.Detail).SingleAsync();
        var update = await Record.ExceptionAsync(() => db.Database.ExecuteSqlAsync($"UPDATE \"AuditEntries\" SET \"Detail\" = 'edited' WHERE \"Id\" = {first}"));
        Assert.Contains("append-only", update?.Message ?? "(no error)", StringComparison.Ordinal);
        var delete = await Record.ExceptionAsync(() => db.Database.ExecuteSqlAsync($"DELETE FROM \"AuditEntries\" WHERE \"Id\" = {first}"));
        Assert.Contains("append-only", delete?.Message ?? "(no error)", StringComparison.Ordinal);
        Assert.Equal(detail, await db.AuditEntries.AsNoTracking().Where(e => e.Id == first).Select(e => e.Detail).SingleAsync());
        Assert.DoesNotContain("edited", await db.AuditEntries.Select(e => e.Detail).ToListAsync());
    }

    /// <summary>An installation one migration behind (the schema the previous version left) is brought up to date at start-up, its data kept.</summary>
    [SkippableTheory]
    [MemberData(nameof(Providers))]
    public async Task PreviousSchema_StartUpAppliesTheLastMigration_DataKept(string provider)
    {
        var data = Directory.CreateTempSubdirectory("netlab-previous-schema-").FullName;
        var connection = provider == DataOptions.Postgres ? await PostgresServer.CreateDatabaseAsync("netlab_prev") : $"Data Source={Path.Combine(data, "dashboard.db")}";
        try
        {
            string previous, last;
            await using (var db = new DashboardDbContext(ServiceCollectionExtensions.ContextOptions(provider, connection)))
            {
                var all = db.Database.GetMigrations().ToList();
                (previous, last) = (all[^2], all[^1]);
                await db.GetService<Microsoft.EntityFrameworkCore.Migrations.IMigrator>().MigrateAsync(previous);
                Assert.Equal(previous, (await db.Database.GetAppliedMigrationsAsync()).Last());
                db.Labs.Add(new Lab { Name = "kept from before", CreatedAt = new DateTimeOffset(2026, 2, 1, 8, 0, 0, TimeSpan.Zero) });
                await db.SaveChangesAsync();
            }

            using (var factory = new DashboardFactory(new() { ["Data:ConnectionString"] = provider == DataOptions.Postgres ? connection : null }, dataDirectory: data, provider: provider))
            {
                _ = factory.Server;
                await using var scope = factory.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
                Assert.Equal(last, (await db.Database.GetAppliedMigrationsAsync()).Last());
                var kept = await db.Labs.SingleAsync(l => l.Name == "kept from before");
                Assert.Equal(new DateTimeOffset(2026, 2, 1, 8, 0, 0, TimeSpan.Zero), kept.CreatedAt);
                var first = await db.AuditEntries.MinAsync(e => e.Id);
                Assert.NotNull(await Record.ExceptionAsync(() => db.Database.ExecuteSqlAsync($"DELETE FROM \"AuditEntries\" WHERE \"Id\" = {first}")));
            }
        }
        finally
        {
            if (provider == DataOptions.Postgres)
            {
                await PostgresServer.DropDatabaseAsync(connection);
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(data, recursive: true);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Providers))]
    public async Task Moments_WrittenWithAnyOffset_AreOrderedAndComparedAsInstants(string provider)
    {
        // With PostgreSQL the factory makes a database of its own (a skip, or with LAB_REQUIRE_DOCKER=1 a failure, without a server).
        using var factory = new DashboardFactory(provider: provider);
        _ = factory.Server;
        await using var scope = factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var t0 = new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

        // In clock order: 12:00 at +05:00 is 07:00 UTC, 09:00 at -02:00 is 11:00 UTC, 11:30 UTC, 14:00 at +02:00 is 12:00 UTC.
        var written = new[]
        {
            (Name: "h-third", At: new DateTimeOffset(2026, 6, 1, 11, 30, 0, TimeSpan.Zero)),
            (Name: "h-first", At: new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.FromHours(5))),
            (Name: "h-last", At: new DateTimeOffset(2026, 6, 1, 14, 0, 0, TimeSpan.FromHours(2))),
            (Name: "h-second", At: new DateTimeOffset(2026, 6, 1, 9, 0, 0, TimeSpan.FromHours(-2))),
        };
        foreach (var (name, at) in written)
        {
            db.FirewallCheckpoints.Add(new FirewallCheckpoint { Host = name, At = at, RuleCount = 0, Shape = "{}" });
        }

        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();

        Assert.Equal(["h-first", "h-second", "h-third", "h-last"], await db.FirewallCheckpoints.Where(c => c.Host.StartsWith("h-")).OrderBy(c => c.At).Select(c => c.Host).ToListAsync());

        // 13:00 at +01:30 is 11:30 UTC: at or after it, the last two.
        var from = new DateTimeOffset(2026, 6, 1, 13, 0, 0, new TimeSpan(1, 30, 0));
        Assert.Equal(["h-third", "h-last"], await db.FirewallCheckpoints.Where(c => c.Host.StartsWith("h-") && c.At >= from).OrderBy(c => c.At).Select(c => c.Host).ToListAsync());
        var back = await db.FirewallCheckpoints.Where(c => c.Host.StartsWith("h-")).ToDictionaryAsync(c => c.Host, c => c.At);
        foreach (var (name, at) in written)
        {
            Assert.Equal(at.UtcTicks, back[name].UtcTicks);
            Assert.Equal(TimeSpan.Zero, back[name].Offset);
        }

        Assert.Equal(t0.AddHours(-5), back["h-first"]);
    }

    /// <summary>
    /// A SQLite installation with 10,000 runs (two recorded in full, with pcaps), users and their lab roles and tokens,
    /// changes, hosts, firewall history and audit: <c>move-to-postgres</c> copies everything, prints every table's
    /// count on both sides, and every row is equal field by field; the dashboard then runs on PostgreSQL with the same
    /// data folder and answers the same history, the runs' pcaps and its sign-in.
    /// </summary>
    [SkippableFact]
    public async Task MoveToPostgres_TenThousandRuns_EveryRowEqual_TheDashboardRunsOnIt()
    {
        PostgresServer.Require();
        var data = Directory.CreateTempSubdirectory("netlab-move-test-").FullName;
        var target = await PostgresServer.CreateDatabaseAsync("netlab_move");
        try
        {
            Guid a;
            TestUser alice;
            string firstPageBefore, cookieBefore;
            int deletedLab;
            using (var sqlite = new DashboardFactory(dataDirectory: data, provider: DataOptions.Sqlite))
            {
                alice = await sqlite.CreateUserAsync("alice", role: LabRole.Operator);
                await using var scope = sqlite.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
                (_, a, _) = await HistorySeed.SeedAsync(db, 10_000, packets: 500, dataDirectory: data);
                await SeedTheRestAsync(db, alice);

                // A probe's output with a NUL (SQLite keeps it; PostgreSQL's text cannot), and a lab made and deleted:
                // SQLite's sequence is then past the highest key, and PostgreSQL must not give that key again.
                await db.Database.ExecuteSqlRawAsync("UPDATE RunProbes SET Output = 'before' || char(0) || 'after' WHERE Id = (SELECT MIN(Id) FROM RunProbes)");
                var gone = new Lab { Name = "made and deleted", CreatedAt = DateTimeOffset.UtcNow };
                db.Labs.Add(gone);
                await db.SaveChangesAsync();
                deletedLab = gone.Id;
                db.Labs.Remove(gone);
                await db.SaveChangesAsync();
                firstPageBefore = await sqlite.CreateClient().GetStringAsync("/api/runs?page=1");
                cookieBefore = await SignInCookieAsync(sqlite, "alice");
                Assert.Equal("alice", await MeAsync(sqlite, cookieBefore));
                foreach (var type in DatabaseMove.CopyOrder(db.Model).Where(t => (!t.GetTableName()!.StartsWith("AspNet", StringComparison.Ordinal) || t.GetTableName() == "AspNetUsers") && t.GetTableName() != "DataProtectionKeys"))
                {
                    Assert.True(await RowsAsync(db, type) is { Count: > 0 }, $"the source should have rows in {type.GetTableName()}");
                }
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Data:Directory"] = data }).Build();
            var output = new StringWriter(CultureInfo.InvariantCulture);
            var code = await DataMoveCommand.RunAsync(["--to", target], configuration, output);
            var printed = output.ToString();
            log.WriteLine(printed);
            Assert.True(code == 0, printed);
            Assert.Contains("Runs", printed, StringComparison.Ordinal);
            Assert.Matches(@"Runs\s+10,000\s+10,000", printed);
            Assert.Contains("run pcaps: 4 referenced, 4 present", printed, StringComparison.Ordinal);
            Assert.DoesNotContain("DIFFERENT", printed, StringComparison.Ordinal);
            Assert.Contains("1 text value(s) held NUL characters", printed, StringComparison.Ordinal);

            // Field by field, every table.
            await using (var source = new DashboardDbContext(ServiceCollectionExtensions.ContextOptions(DataOptions.Sqlite, $"Data Source={Path.Combine(data, "dashboard.db")}")))
            await using (var moved = new DashboardDbContext(ServiceCollectionExtensions.ContextOptions(DataOptions.Postgres, target)))
            {
                foreach (var type in DatabaseMove.CopyOrder(source.Model))
                {
                    var (s, t) = (await RowsAsync(source, type), await RowsAsync(moved, type));
                    if (type.GetTableName() == "DataProtectionKeys")
                    {
                        // SQLite's keys are files in the data folder; the move puts them in the database.
                        Assert.Empty(s);
                        Assert.Equal(Directory.GetFiles(Path.Combine(data, "keys"), "key-*.xml").Length, t.Count);
                        Assert.NotEmpty(t);
                        continue;
                    }

                    if (type.GetTableName() == "AuditEntries")
                    {
                        // The move's own entry comes last, after everything it counted.
                        Assert.Equal("data.moved", (await moved.AuditEntries.OrderByDescending(e => e.Id).FirstAsync()).Action);
                        t = t.Take(s.Count).ToList();
                    }

                    if (type.GetTableName() == "RunProbes")
                    {
                        // The one change a move makes: NUL became U+FFFD.
                        Assert.Single(s, r => r.Contains('\0', StringComparison.Ordinal));
                        s = s.Select(r => r.Replace('\0', '\uFFFD')).ToList();
                    }

                    Assert.True(s.SequenceEqual(t), $"{type.GetTableName()}: {s.Count} rows in SQLite, {t.Count} in PostgreSQL, first difference: {s.Zip(t).FirstOrDefault(p => p.First != p.Second)}");
                }
            }

            // A second move into the same database is refused: it is no longer empty.
            var again = new StringWriter(CultureInfo.InvariantCulture);
            Assert.Equal(1, await DataMoveCommand.RunAsync(["--to", target], configuration, again));
            Assert.Contains("not empty", again.ToString(), StringComparison.Ordinal);

            using var postgres = new DashboardFactory(new() { ["Data:ConnectionString"] = target }, dataDirectory: data, provider: DataOptions.Postgres);
            Assert.Equal(firstPageBefore, await postgres.CreateClient().GetStringAsync("/api/runs?page=1"));

            // Alice's sign-in cookie from before the move: the keys moved with the data.
            Assert.Equal("alice", await MeAsync(postgres, cookieBefore));
            Assert.Equal(System.Net.HttpStatusCode.OK, (await postgres.CreateClient(alice.Token).GetAsync($"/api/runs/{a}")).StatusCode);
            await using (var scope = postgres.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
                var capture = await db.RunCaptures.FirstAsync(c => c.RunId == a);
                var pcap = await postgres.CreateClient(alice.Token).GetAsync($"/api/runs/{a}/captures/{capture.Id}/pcap");
                Assert.Equal(System.Net.HttpStatusCode.OK, pcap.StatusCode);

                // New rows get keys after the moved ones, in every table whose key the database gives.
                var maxima = (Audit: await db.AuditEntries.MaxAsync(e => e.Id), Lab: await db.Labs.MaxAsync(l => l.Id), Change: await db.ChangeRequests.MaxAsync(c => c.Id), Host: await db.Hosts.MaxAsync(h => h.Id), Checkpoint: await db.FirewallCheckpoints.MaxAsync(c => c.Id), Record: await db.FirewallChanges.MaxAsync(c => c.Id), Packet: await db.RunPackets.MaxAsync(p => p.Id));
                var audit = new AuditEntry { At = DateTimeOffset.UtcNow, Actor = "test", Action = "test.after-move", Detail = "after" };
                var lab = new Lab { Name = "after the move", CreatedAt = DateTimeOffset.UtcNow };
                var change = new ChangeRequest { LabId = 1, RuleJson = "{}", Rationale = "after", ProposedById = alice.Id, ProposedByName = alice.Name, CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow };
                var host = new RegisteredHost { Name = "after-move", TokenHash = new string('b', 64), TokenPrefix = "nla_efgh", CreatedBy = "admin", CreatedAt = DateTimeOffset.UtcNow };
                var checkpoint = new FirewallCheckpoint { Host = "vm", At = DateTimeOffset.UtcNow, Shape = "{}" };
                var record = new FirewallChangeRecord { Host = "vm", At = DateTimeOffset.UtcNow, RecordedAt = DateTimeOffset.UtcNow, Family = "ipv4", Table = "filter", Chain = "FORWARD", Kind = "Added", Cause = "Outside" };
                var packet = new RunPacket { RunId = a, Interface = "br-after", Timestamp = DateTimeOffset.UtcNow, Protocol = "ICMP", Summary = "after" };
                db.AddRange(audit, lab, change, host, checkpoint, record, packet);
                await db.SaveChangesAsync();
                Assert.True(lab.Id > deletedLab, $"lab {lab.Id} after the move reuses the key of a lab deleted before it ({deletedLab})");
                Assert.True(audit.Id > maxima.Audit && lab.Id > maxima.Lab && change.Id > maxima.Change && host.Id > maxima.Host && checkpoint.Id > maxima.Checkpoint && record.Id > maxima.Record && packet.Id > maxima.Packet, $"keys after the move: {audit.Id}/{maxima.Audit} {lab.Id}/{maxima.Lab} {change.Id}/{maxima.Change} {host.Id}/{maxima.Host} {checkpoint.Id}/{maxima.Checkpoint} {record.Id}/{maxima.Record} {packet.Id}/{maxima.Packet}");
            }
        }
        finally
        {
            await PostgresServer.DropDatabaseAsync(target);
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// Two dashboards on one PostgreSQL database (two replicas) share the data-protection keys there: a sign-in cookie
    /// issued by one is accepted by the other; one issued by a dashboard on another database is not.
    /// </summary>
    [SkippableFact]
    public async Task Replicas_OnOneDatabase_AcceptEachOthersSignInCookies_AnotherDatabasesAreRefused()
    {
        using var a = new DashboardFactory(provider: DataOptions.Postgres);
        using var b = new DashboardFactory(new() { ["Data:ConnectionString"] = a.PostgresConnection }, provider: DataOptions.Postgres);

        // Both start at once on an empty key ring: one key is made, under the database's lock (each making its own
        // would leave each refusing the other's cookies until a ring refresh, up to a day).
        await Task.WhenAll(Task.Run(() => a.Server), Task.Run(() => b.Server));
        await using (var s = a.Services.CreateAsyncScope())
        {
            Assert.Equal(1, await s.ServiceProvider.GetRequiredService<DashboardDbContext>().DataProtectionKeys.CountAsync());
        }

        await a.CreateUserAsync("bob", role: LabRole.Viewer);
        using var elsewhere = new DashboardFactory(provider: DataOptions.Postgres);
        await elsewhere.CreateUserAsync("bob", role: LabRole.Viewer);

        var fromA = await SignInCookieAsync(a, "bob");
        Assert.Equal("bob", await MeAsync(a, fromA));
        Assert.Equal("bob", await MeAsync(b, fromA));
        var fromB = await SignInCookieAsync(b, "admin");
        Assert.Equal("admin", await MeAsync(a, fromB));
        Assert.Null(await MeAsync(b, await SignInCookieAsync(elsewhere, "bob")));
        await using var scope = a.Services.CreateAsyncScope();
        Assert.True(await scope.ServiceProvider.GetRequiredService<DashboardDbContext>().DataProtectionKeys.AnyAsync());
        Assert.False(Directory.Exists(Path.Combine(a.DataDirectory, "keys")));
    }

    /// <summary>The cookie a browser signed in to <paramref name="app"/> as <paramref name="user"/> would carry.</summary>
    private static async Task<string> SignInCookieAsync(DashboardFactory app, string user)
    {
        _ = app.Server;
        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
        var principal = await scope.ServiceProvider.GetRequiredService<SignInManager<DashboardUser>>().CreateUserPrincipalAsync((await users.FindByNameAsync(user))!);
        var options = app.Services.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>().Get(IdentityConstants.ApplicationScheme);
        var ticket = new AuthenticationTicket(principal, new AuthenticationProperties { IssuedUtc = DateTimeOffset.UtcNow, ExpiresUtc = DateTimeOffset.UtcNow.AddHours(1) }, IdentityConstants.ApplicationScheme);
        return $"{options.Cookie.Name}={options.TicketDataFormat.Protect(ticket)}";
    }

    /// <summary>Who <paramref name="app"/> says the cookie belongs to (GET /api/me), or null when it refuses it.</summary>
    private static async Task<string?> MeAsync(DashboardFactory app, string cookie)
    {
        using var http = app.CreateAnonymousClient();
        http.DefaultRequestHeaders.Add("Cookie", cookie);
        using var me = await http.GetAsync("/api/me");
        return me.IsSuccessStatusCode ? (await me.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("name").GetString() : null;
    }

    /// <summary>A target that holds any table is refused before anything is written to it (no migration either).</summary>
    [SkippableFact]
    public async Task MoveToPostgres_TargetNotEmpty_RefusedBeforeAnythingIsWritten()
    {
        var target = await PostgresServer.CreateDatabaseAsync("netlab_busy");
        try
        {
            using var sqlite = new DashboardFactory(provider: DataOptions.Sqlite);
            _ = sqlite.Server;
            await using (var c = new Npgsql.NpgsqlConnection(target))
            {
                await c.OpenAsync();
                await using var cmd = new Npgsql.NpgsqlCommand("CREATE TABLE team_notes (id int PRIMARY KEY, note text); INSERT INTO team_notes VALUES (1, 'keep me')", c);
                await cmd.ExecuteNonQueryAsync();
            }

            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Data:Directory"] = sqlite.DataDirectory }).Build();
            var output = new StringWriter(CultureInfo.InvariantCulture);
            Assert.Equal(1, await DataMoveCommand.RunAsync(["--to", target], configuration, output));
            Assert.Contains("not empty (it has tables: public.team_notes)", output.ToString(), StringComparison.Ordinal);
            Assert.Contains("Nothing was changed", output.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("drop", output.ToString(), StringComparison.OrdinalIgnoreCase);
            await using (var c = new Npgsql.NpgsqlConnection(target))
            {
                await c.OpenAsync();
                await using var cmd = new Npgsql.NpgsqlCommand("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'", c);
                Assert.Equal("team_notes", await cmd.ExecuteScalarAsync());
            }
        }
        finally
        {
            await PostgresServer.DropDatabaseAsync(target);
        }
    }

    /// <summary>
    /// A move that fails at its very end (here: the step that adds the keys and the audit entry throws) keeps nothing:
    /// every table of the target is empty afterwards; a SQLite table this version does not know is refused before any row.
    /// </summary>
    [SkippableFact]
    public async Task Move_FailingAtTheEnd_KeepsNothing_UnknownSourceTableRefused()
    {
        var target = await PostgresServer.CreateDatabaseAsync("netlab_rollback");
        try
        {
            using var sqlite = new DashboardFactory(provider: DataOptions.Sqlite);
            await sqlite.CreateUserAsync("carol", role: LabRole.Viewer);
            await using var sourceDb = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={sqlite.DatabasePath}");
            await using var targetDb = new Npgsql.NpgsqlConnection(target);
            DashboardDbContext Source() => new(ServiceCollectionExtensions.ContextOptions(DataOptions.Sqlite, sourceDb));
            DashboardDbContext Target() => new(ServiceCollectionExtensions.ContextOptions(DataOptions.Postgres, targetDb));
            await using (var t = Target())
            {
                await t.Database.MigrateAsync();
            }

            var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => DatabaseMove.CopyAsync(Source, Target, beforeCommit: (_, _, _) => throw new InvalidOperationException("the last step failed")));
            Assert.Equal("the last step failed", failure.Message);
            await using (var t = Target())
            {
                foreach (var type in DatabaseMove.CopyOrder(t.Model))
                {
                    Assert.True(await RowsAsync(t, type) is { Count: 0 }, $"{type.GetTableName()} should be empty after the failed move");
                }
            }

            await using (var s = Source())
            {
                await s.Database.ExecuteSqlRawAsync("CREATE TABLE extra_notes (id INTEGER PRIMARY KEY, note TEXT)");
            }

            var refused = await Assert.ThrowsAsync<DatabaseMoveException>(() => DatabaseMove.CopyAsync(Source, Target));
            Assert.Contains("tables this version does not know (extra_notes)", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            await PostgresServer.DropDatabaseAsync(target);
        }
    }

    [Fact]
    public async Task MoveToPostgres_BadArguments_SayWhatIsMissingAndTouchNothing()
    {
        var data = Directory.CreateTempSubdirectory("netlab-move-args-").FullName;
        try
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Data:Directory"] = data }).Build();
            async Task<(int, string)> Run(params string[] args)
            {
                var o = new StringWriter(CultureInfo.InvariantCulture);
                return (await DataMoveCommand.RunAsync(args, configuration, o), o.ToString());
            }

            Assert.Equal(2, (await Run("--to")).Item1);
            Assert.Contains("unknown argument '--bogus'", (await Run("--bogus")).Item2, StringComparison.Ordinal);
            if (Environment.GetEnvironmentVariable("NETLAB_MOVE_TO") is null)
            {
                Assert.Contains("no target", (await Run()).Item2, StringComparison.Ordinal);
            }

            Assert.Equal(2, (await Run("--to", "Host=/tmp;Bogus Key=1")).Item1);
            var (code, text) = await Run("--to", "Host=/tmp/netlab-none;Database=netlab_none");
            Assert.Equal(1, code);
            Assert.Contains("no SQLite database at", text, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(data));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>Every row of a table as text, field by field (moments as UTC ticks), ordered by key.</summary>
    private static async Task<List<string>> RowsAsync(DashboardDbContext db, IEntityType type)
    {
        var load = typeof(ProviderTests).GetMethod(nameof(LoadAsync), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.MakeGenericMethod(type.ClrType);
        var rows = await (Task<List<object>>)load.Invoke(null, [db])!;
        var props = type.GetProperties().Where(p => p.PropertyInfo is not null).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        var key = type.FindPrimaryKey()!.Properties.Select(p => p.PropertyInfo!).ToList();
        static string Text(object? v) => v switch
        {
            null => "∅",
            DateTimeOffset d => d.UtcTicks.ToString(CultureInfo.InvariantCulture),
            byte[] b => Convert.ToHexString(b),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => v.ToString() ?? "",
        };
        return rows.OrderBy(r => string.Join("|", key.Select(k => Text(k.GetValue(r)).PadLeft(40))), StringComparer.Ordinal)
            .Select(r => string.Join(" ", props.Select(p => $"{p.Name}={Text(p.PropertyInfo!.GetValue(r))}")))
            .ToList();
    }

    private static async Task<List<object>> LoadAsync<T>(DashboardDbContext db)
        where T : class => (await db.Set<T>().AsNoTracking().ToListAsync()).Cast<object>().ToList();

    private static async Task SeedTheRestAsync(DashboardDbContext db, TestUser alice)
    {
        var at = new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero);
        db.ChangeRequests.Add(new ChangeRequest
        {
            LabId = 1, RuleJson = """{"table":"filter","chain":"DOCKER-USER","target":"ACCEPT"}""", Rationale = "moved", State = ChangeState.Rejected,
            ProposedById = alice.Id, ProposedByName = alice.Name, CreatedAt = at, UpdatedAt = at.AddMinutes(1), DecidedAt = at.AddMinutes(1), DecidedByName = "admin",
        });
        db.Hosts.Add(new RegisteredHost { Name = "moved-host", TokenHash = new string('a', 64), TokenPrefix = "nla_abcd", CreatedBy = "admin", CreatedAt = at, RevokedAt = at.AddDays(1) });
        db.FirewallCheckpoints.Add(new FirewallCheckpoint { Host = "vm", At = at, RuleCount = 1, Shape = """{"t":[]}""" });
        db.FirewallChanges.Add(new FirewallChangeRecord
        {
            Host = "vm", At = at.AddSeconds(1), RecordedAt = at.AddSeconds(1), Family = "ipv4", Table = "filter", Chain = "DOCKER-USER", Kind = "Added",
            RuleText = "-A DOCKER-USER -s 198.18.0.1/32 -j RETURN", PositionAfter = 1, Cause = "Outside",
        });
        await db.SaveChangesAsync();
    }
}
