using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Core.Changes;
using Dashboard.Data.Entities;
using Dashboard.App.Changes;
using Dashboard.App.Runs;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Security;

/// <summary>
/// Every lab role (and a non-member, and nobody) against every lab action, through the API, the hub and the services the
/// pages call: what is forbidden is refused on the server, with 401 (not signed in), 403 (role too low) or 404 (not a
/// member: the lab is not disclosed). Allowed calls are made to fail later for another reason (a rejected change, an
/// unknown variant, an invalid rule), so nothing here touches the host's firewall.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class RoleMatrixTests : IAsyncLifetime
{
    private static readonly string[] Roles = ["viewer", "operator", "approver", "labadmin", "outsider", "anonymous"];
    private readonly DashboardFactory _factory = new();
    private readonly Dictionary<string, TestUser> _users = [];
    private int _proposed;
    private int _rejected;
    private Guid _experiment;

    public async Task InitializeAsync()
    {
        _users["viewer"] = await _factory.CreateUserAsync("vera", 1, LabRole.Viewer);
        _users["operator"] = await _factory.CreateUserAsync("otto", 1, LabRole.Operator);
        _users["approver"] = await _factory.CreateUserAsync("anna", 1, LabRole.Approver);
        _users["labadmin"] = await _factory.CreateUserAsync("lena", 1, LabRole.Admin);
        _users["outsider"] = await _factory.CreateUserAsync("olga", 1, role: null);
        var changes = _factory.Services.GetRequiredService<ChangeRequestService>();
        var rule = new ChangeRule { Chain = "DOCKER-USER", Position = 1, Source = "172.31.250.0/24", Destination = "172.31.251.0/24", Protocol = "icmp", Target = "ACCEPT" };
        if (RealHost.Available || RealHost.Required)
        {
            _proposed = (await changes.ProposeAsync(_users["operator"].Actor, 1, rule, "matrix fixture", null)).Id;
            _rejected = (await changes.ProposeAsync(_users["operator"].Actor, 1, rule, "matrix fixture (rejected)", null)).Id;
            await changes.RejectAsync(_users["approver"].Actor, _rejected, "fixture");
        }

        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Dashboard.Data.DashboardDbContext>();
        await RunService.EnsureBuiltInsAsync(db);
        _experiment = db.Experiments.Single(e => e.BuiltIn && e.LabId == 1).Id;
    }

    public Task DisposeAsync()
    {
        _factory.Dispose();
        return Task.CompletedTask;
    }

    private HttpClient Client(string role) => role == "anonymous" ? _factory.CreateAnonymousClient() : _factory.CreateClient(_users[role].Token);

    private static readonly JsonElement BadScenario = JsonDocument.Parse("{\"networks\":[]}").RootElement;

    private static readonly JsonElement HostWideScenario = JsonDocument.Parse("""
        {"networks":[{"name":"net1"}],"containers":[{"name":"c1","network":"net1"},{"name":"c2","network":"net1"}],"probes":[{"kind":"ping","from":"c2","to":"c1"}],
         "variants":[{"name":"open","rules":[{"table":"filter","chain":"FORWARD","position":1,"target":"ACCEPT"}]}],"captures":["net1"]}
        """).RootElement;

    public static TheoryData<string, string, string, string> Actions() => new()
    {
        // action, method, path (ids filled in), expected codes for viewer/operator/approver/labadmin/outsider/anonymous
        { "list changes", "GET", "/api/changes?lab=1", "200 200 200 200 404 401" },
        { "read a change", "GET", "/api/changes/{proposed}", "200 200 200 200 404 401" },
        { "what-if of a change", "GET", "/api/changes/{proposed}/what-if", "200 200 200 200 404 401" },
        { "propose (invalid rule)", "POST", "/api/changes", "403 400 400 400 404 401" },
        { "approve (a rejected change)", "POST", "/api/changes/{rejected}/approve", "403 403 409 409 404 401" },
        { "reject (a rejected change)", "POST", "/api/changes/{rejected}/reject", "403 403 409 409 404 401" },
        { "revert (not applied)", "POST", "/api/changes/{rejected}/revert", "403 409 409 409 404 401" },
        { "list runs", "GET", "/api/runs?lab=1", "200 200 200 200 404 401" },
        { "list experiments", "GET", "/api/experiments?lab=1", "200 200 200 200 404 401" },
        { "start a run (unknown variant)", "POST", "/api/runs", "403 400 400 400 404 401" },
        { "create an experiment (invalid)", "POST", "/api/experiments", "403 400 400 400 404 401" },
        { "set a member", "PUT", "/api/labs/1/members", "403 403 403 204 404 401" },
        { "lab settings", "PUT", "/api/labs/1/settings", "403 403 403 204 404 401" },
        { "lab members", "GET", "/api/labs/1/members", "200 200 200 200 404 401" },
        { "start a capture (no such interface)", "POST", "/api/captures", "403 400 400 400 403 401" },
        { "start a trace (invalid flow)", "POST", "/api/traces", "403 400 400 400 403 401" },
        { "download a capture's pcap (not theirs)", "GET", "/api/captures/notyours0001/pcap", "404 404 404 404 404 401" },
        { "stop a capture (not theirs)", "DELETE", "/api/captures/notyours0001", "404 404 404 404 404 401" },
        { "read a trace (not theirs)", "GET", "/api/traces/notyours01", "404 404 404 404 404 401" },
        { "create an experiment (host-wide variant)", "POST", "/api/experiments", "403 400 400 400 404 401" },
        { "create a lab", "POST", "/api/labs", "403 403 403 403 403 401" },
        { "list accounts", "GET", "/api/users", "403 403 403 403 403 401" },
        { "audit log", "GET", "/api/audit", "200 200 200 200 200 401" },
        { "my tokens", "GET", "/api/tokens", "200 200 200 200 200 401" },
    };

    [SkippableTheory]
    [MemberData(nameof(Actions))]
    public async Task Api_EveryRoleAgainstAction_IsDecidedServerSide(string action, string method, string path, string expected)
    {
        RealHost.Require();
        var codes = expected.Split(' ').Select(int.Parse).ToArray();
        path = path.Replace("{proposed}", _proposed.ToString(), StringComparison.Ordinal).Replace("{rejected}", _rejected.ToString(), StringComparison.Ordinal);
        object? body = action switch
        {
            "propose (invalid rule)" => new { lab = 1, rule = new { chain = "DOCKER-USER", source = "1.2.3.4; reboot", target = "ACCEPT" }, rationale = "x" },
            "start a run (unknown variant)" => new { experimentId = _experiment, variant = "no-such-variant" },
            "create an experiment (invalid)" => new { name = "x", scenario = BadScenario, lab = 1 },
            "create an experiment (host-wide variant)" => new { name = "wide", lab = 1, scenario = HostWideScenario },
            "set a member" => new { userName = "vera", role = "Viewer" },
            "lab settings" => new { allowSelfApprovalWhenAlone = false },
            "start a capture (no such interface)" => new { @interface = "nosuchif0", filter = "icmp" },
            "start a trace (invalid flow)" => new { source = "1.2.3.4; reboot", destination = "x" },
            "create a lab" => new { name = "Lab " + Guid.NewGuid().ToString("N")[..6] },
            _ => method is "POST" or "PUT" ? new { note = "matrix" } : null,
        };
        var failures = new List<string>();
        for (var i = 0; i < Roles.Length; i++)
        {
            using var http = Client(Roles[i]);
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : JsonContent.Create(body) };
            using var response = await http.SendAsync(request);
            if ((int)response.StatusCode != codes[i])
            {
                failures.Add($"{Roles[i]}: expected {codes[i]}, got {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }

        Assert.True(failures.Count == 0, $"{action}: " + string.Join("\n", failures));
        if (path is "/api/captures" or "/api/traces")
        {
            // Host actions refused from the API are audited, as they are from the pages.
            var kind = path == "/api/captures" ? "capture" : "trace";
            var audit = _factory.Services.GetRequiredService<Dashboard.App.Audit.AuditLog>();
            foreach (var role in new[] { "viewer", "outsider" })
            {
                var entries = await audit.QueryAsync(_users["labadmin"].Actor with { IsAdministrator = true }, new(User: _users[role].Name, Action: $"{kind}.started-refused"));
                Assert.True(entries.Total == 1, $"{role}: {entries.Total} '{kind}.started-refused' audit entries");
                Assert.Contains("Operator role", entries.Rows[0].Detail, StringComparison.Ordinal);
            }
        }
    }

    [SkippableFact]
    public async Task Hub_EveryRoleAgainstChangeActions_IsDecidedServerSide_AndUpdatesReachOnlyMembers()
    {
        RealHost.Require();
        var server = _factory.Server;
        async Task<HubConnection> ConnectAsync(string? token)
        {
            var hub = new HubConnectionBuilder()
                .WithUrl(new Uri(server.BaseAddress, "hubs/lab"), o =>
                {
                    o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                    o.Transports = HttpTransportType.LongPolling;
                    if (token is not null)
                    {
                        o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                    }
                })
                .AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()))
                .Build();
            await hub.StartAsync();
            return hub;
        }

        // Nobody signed in: the hub refuses the connection itself.
        var anonymous = await Assert.ThrowsAnyAsync<HttpRequestException>(() => ConnectAsync(null));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        var bad = new ChangeRule { Chain = "DOCKER-USER", Source = "1.2.3.4; reboot", Target = "ACCEPT" };
        var calls = new (string Name, Func<HubConnection, Task> Call, string Expected)[]
        {
            ("ListChanges", h => h.InvokeAsync<JsonElement>("ListChanges", 1), "ok ok ok ok 404"),
            ("ProposeChange", h => h.InvokeAsync<JsonElement>("ProposeChange", 1, bad, "why", null), "403 400 400 400 404"),
            ("ApproveChange", h => h.InvokeAsync<JsonElement>("ApproveChange", _rejected, "note"), "403 403 409 409 404"),
            ("RejectChange", h => h.InvokeAsync<JsonElement>("RejectChange", _rejected, "note"), "403 403 409 409 404"),
            ("RevertChange", h => h.InvokeAsync<JsonElement>("RevertChange", _rejected), "403 409 409 409 404"),
            ("SetMember", h => h.InvokeAsync("SetMember", 1, "vera", LabRole.Viewer), "403 403 403 ok 404"),
        };
        var failures = new List<string>();
        var updates = new ConcurrentDictionary<string, int>();
        var connections = new Dictionary<string, HubConnection>();
        try
        {
            foreach (var role in Roles.Take(5))
            {
                var hub = await ConnectAsync(_users[role].Token);
                connections[role] = hub;
                hub.On<JsonElement>("ChangeRequestUpdated", _ => updates.AddOrUpdate(role, 1, (_, n) => n + 1));
            }

            foreach (var (name, call, expected) in calls)
            {
                var codes = expected.Split(' ');
                for (var i = 0; i < 5; i++)
                {
                    string got;
                    try
                    {
                        await call(connections[Roles[i]]);
                        got = "ok";
                    }
                    catch (HubException ex)
                    {
                        // "... HubException: 403: this needs the Approver role ..."
                        got = System.Text.RegularExpressions.Regex.Match(ex.Message, @"HubException: (\d{3}):").Groups[1].Value is { Length: 3 } code ? code : ex.Message;
                    }

                    if (got != codes[i])
                    {
                        failures.Add($"{name} as {Roles[i]}: expected {codes[i]}, got {got}");
                    }
                }
            }

            // A proposal reaches the lab's members live, and nobody else.
            var changes = _factory.Services.GetRequiredService<ChangeRequestService>();
            var rule = new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.250.0/24", Destination = "172.31.251.0/24", Target = "ACCEPT" };
            await changes.ProposeAsync(_users["operator"].Actor, 1, rule, "live", null);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (waited.Elapsed < TimeSpan.FromSeconds(10) && Roles.Take(4).Any(r => !updates.ContainsKey(r)))
            {
                await Task.Delay(100);
            }

            await Task.Delay(500);
            Assert.All(Roles.Take(4), r => Assert.True(updates.ContainsKey(r), $"{r} got no ChangeRequestUpdated"));
            Assert.False(updates.ContainsKey("outsider"), "a non-member received a lab's change request");
        }
        finally
        {
            foreach (var h in connections.Values)
            {
                await h.DisposeAsync();
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [SkippableFact]
    public async Task Services_UsedByPages_RefuseTheSameWay()
    {
        RealHost.Require();
        var changes = _factory.Services.GetRequiredService<ChangeRequestService>();
        var access = _factory.Services.GetRequiredService<Dashboard.App.Labs.LabAccess>();
        var runs = _factory.Services.GetRequiredService<RunService>();
        var rule = new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.250.0/24", Target = "ACCEPT" };

        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => changes.ProposeAsync(_users["viewer"].Actor, 1, rule, "why", null))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.NotFound, (await Assert.ThrowsAsync<LabAccessException>(() => changes.ProposeAsync(_users["outsider"].Actor, 1, rule, "why", null))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => changes.ApproveAsync(_users["operator"].Actor, _proposed, null))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.NotFound, (await Assert.ThrowsAsync<LabAccessException>(() => changes.ApproveAsync(_users["outsider"].Actor, _proposed, null))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.NotFound, (await Assert.ThrowsAsync<LabAccessException>(() => changes.GetAsync(_users["outsider"].Actor, _proposed))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => runs.StartAsync(_users["viewer"].Actor, _experiment, "isolated"))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => access.SetMemberAsync(_users["approver"].Actor, 1, "vera", LabRole.Admin))).Reason);
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => access.RequireHostOperatorAsync(_users["viewer"].Actor, "isolation.verify"))).Reason);
        Assert.Equal(LabRole.Viewer, await access.RoleAsync(_users["viewer"].Actor, 1));
    }

    [SkippableFact]
    public async Task SelfApproval_IsRefused_AndNonMemberApprovalIsRefused_BothAudited()
    {
        RealHost.Require();
        var changes = _factory.Services.GetRequiredService<ChangeRequestService>();
        var rule = new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.250.0/24", Target = "ACCEPT" };
        var own = await changes.ProposeAsync(_users["approver"].Actor, 1, rule, "my own", null);
        var refused = await Assert.ThrowsAsync<LabAccessException>(() => changes.ApproveAsync(_users["approver"].Actor, own.Id, null));
        Assert.Equal(403, refused.Status);
        Assert.Contains("different member", refused.Message, StringComparison.Ordinal);
        Assert.Equal(Dashboard.App.Access.AccessDenial.NotFound, (await Assert.ThrowsAsync<LabAccessException>(() => changes.ApproveAsync(_users["outsider"].Actor, own.Id, null))).Reason);
        Assert.Equal(ChangeState.Proposed, (await changes.GetAsync(_users["viewer"].Actor, own.Id)).State);

        using var admin = _factory.CreateClient();
        var audit = await admin.GetFromJsonAsync<JsonElement>($"/api/audit?text=change {own.Id}&pageSize=50");
        var actions = audit.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("action").GetString()).ToList();
        Assert.Contains("change.approve-refused", actions);
        Assert.Contains("change.proposed", actions);
    }

    [SkippableFact]
    public async Task Abuse_HostileFields_AreRejectedWithMessages_AndNothingIsStoredOrApplied()
    {
        RealHost.Require();
        using var http = _factory.CreateClient(_users["operator"].Token);
        var before = (await http.GetFromJsonAsync<JsonElement>("/api/changes?lab=1")).GetArrayLength();
        var huge = new string('A', 10_000);
        object[] hostile =
        [
            new { lab = 1, rule = new { chain = "DOCKER-USER", source = "1.2.3.4; reboot", target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", inInterface = "eth0 -j ACCEPT", target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", inInterface = "br-ünï", target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", outInterface = "nosuchif0", target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "NO-SUCH-CHAIN", target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = huge, source = huge, target = "ACCEPT" }, rationale = huge },
            new { lab = 1, rule = new { chain = "DOCKER-USER", position = -3, target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", position = 100_000, target = "ACCEPT" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", target = "ACCEPT -j DROP" }, rationale = "x" },
            new { lab = 1, rule = new { chain = "DOCKER-USER", target = "ACCEPT" }, rationale = "x", ttlSeconds = -5 },
            new { lab = 1, rule = new { table = "security", chain = "DOCKER-USER", target = "ACCEPT" }, rationale = "x" },
        ];
        foreach (var body in hostile)
        {
            using var response = await http.PostAsJsonAsync("/api/changes", body);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{JsonSerializer.Serialize(body)[..Math.Min(200, JsonSerializer.Serialize(body).Length)]} → {(int)response.StatusCode} {problem}");
            Assert.True(problem.TryGetProperty("errors", out var errors) && errors.EnumerateObject().Any(), problem.ToString());
            Assert.True(problem.ToString().Length < 3000, "the message echoes the whole hostile input");
        }

        // A 10,000-character body that is not even JSON for a rule: refused, not a 500.
        using (var junk = await http.PostAsync("/api/changes", new StringContent("{\"rule\":" + huge + "}", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, junk.StatusCode);
        }

        Assert.Equal(before, (await http.GetFromJsonAsync<JsonElement>("/api/changes?lab=1")).GetArrayLength());
        var save = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("iptables-save", [], TimeSpan.FromSeconds(20));
        Assert.DoesNotContain("reboot", save.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("nosuchif0", save.StdOut, StringComparison.Ordinal);
    }
}
