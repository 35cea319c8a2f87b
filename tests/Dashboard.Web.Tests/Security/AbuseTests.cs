using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Security;

/// <summary>
/// Hostile requests over real HTTP with real sign-ins (API tokens, and a browser-style cookie where the hole needs
/// one), one test per item of the security issue: each would have passed on the code before it (see the review).
/// </summary>
public sealed partial class AbuseTests : IAsyncLifetime
{
    private readonly DashboardFactory _factory = new();
    private TestUser _operator = null!;
    private TestUser _labAdmin = null!;
    private TestUser _outsider = null!;
    private TestUser _approver = null!;

    public async Task InitializeAsync()
    {
        _operator = await _factory.CreateUserAsync("otto", 1, LabRole.Operator);
        _labAdmin = await _factory.CreateUserAsync("lena", 1, LabRole.Admin);
        _approver = await _factory.CreateUserAsync("anna", 1, LabRole.Approver);
        _outsider = await _factory.CreateUserAsync("olga", 1, role: null);
    }

    public Task DisposeAsync()
    {
        _factory.Dispose();
        return Task.CompletedTask;
    }

    private HubConnection Hub(string token) => Dashboard.Web.Tests.Hubs.TestHub.Connect(_factory, token);

    private async Task<List<AuditEntry>> AuditAsync(string action)
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        return await db.AuditEntries.AsNoTracking().Where(a => a.Action == action).OrderBy(a => a.Id).ToListAsync();
    }

    [SkippableTheory]
    [Trait("Category", "RealHost")]
    [InlineData("lo")]
    [InlineData("eth0")]
    public async Task Captures_LoopbackAndTheHostsNic_AreRefused_AndAuditedAsRefused(string iface)
    {
        RealHost.Require();
        if (!Directory.Exists($"/sys/class/net/{iface}"))
        {
            iface = Directory.GetDirectories("/sys/class/net").Select(Path.GetFileName).First(n => File.Exists($"/sys/class/net/{n}/device/uevent"))!;
        }

        using var http = _factory.CreateClient(_operator.Token);

        var response = await http.PostAsJsonAsync("/api/captures", new { @interface = iface, filter = "tcp port 5000" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("only the bridges of Docker networks", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty((await http.GetFromJsonAsync<JsonElement>("/api/captures")).EnumerateArray());
        var refused = Assert.Single(await AuditAsync("capture.refused"));
        Assert.False(refused.Succeeded);
        Assert.Contains(iface, refused.Detail, StringComparison.Ordinal);
        Assert.Contains("tcp port 5000", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(await AuditAsync("capture.started"));
    }

    [SkippableFact]
    [Trait("Category", "RealHost")]
    public async Task Captures_BelongToTheirStarter_OthersCannotListDownloadOrStop_ASiteAdministratorMay()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var asOperator = _factory.CreateClient(_operator.Token);
        using var asOutsider = _factory.CreateClient(_outsider.Token);
        using var asApprover = _factory.CreateClient(_approver.Token);
        using var asLabAdmin = _factory.CreateClient(_labAdmin.Token);

        var started = await asOperator.PostAsJsonAsync("/api/captures", new { @interface = seed.Bridge2, filter = $"icmp and host {seed.C1Ip}" });
        Assert.Equal(HttpStatusCode.Created, started.StatusCode);
        var capture = await started.Content.ReadFromJsonAsync<JsonElement>();
        var id = capture.GetProperty("id").GetString()!;

        // Limits apply although none were asked for.
        Assert.Equal(100_000, capture.GetProperty("packetLimit").GetInt64());
        Assert.Equal(600, capture.GetProperty("timeLimitSeconds").GetDouble());
        Assert.Equal(100L * 1024 * 1024, capture.GetProperty("byteLimit").GetInt64());

        foreach (var other in new[] { asOutsider, asApprover })
        {
            Assert.DoesNotContain((await other.GetFromJsonAsync<JsonElement>("/api/captures")).EnumerateArray(), c => c.GetProperty("id").GetString() == id);
            Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/captures/{id}/pcap")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await other.DeleteAsync($"/api/captures/{id}")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await asOperator.GetAsync($"/api/captures/{id}/pcap")).StatusCode);

        // A host-wide capture is its starter's alone: a lab Admin is not shown it either (any lab Admin can add any user
        // to a lab); a site administrator may stop it (audited).
        Assert.Equal(HttpStatusCode.NotFound, (await asLabAdmin.GetAsync($"/api/captures/{id}/pcap")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await asLabAdmin.DeleteAsync($"/api/captures/{id}")).StatusCode);
        using var asSiteAdmin = _factory.CreateClient();
        var stopped = await asSiteAdmin.DeleteAsync($"/api/captures/{id}");
        Assert.Equal(HttpStatusCode.OK, stopped.StatusCode);
        Assert.Equal("Requested", (await stopped.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("endReason").GetString());
        Assert.Contains(await AuditAsync("capture.stopped"), a => a.Actor == DashboardFactory.AdminUser);
    }

    [Theory]
    [InlineData("{\"interface\":\"br-x\",\"timeLimitSeconds\":1e300}", "time limit")]
    [InlineData("{\"interface\":\"br-x\",\"packetLimit\":0}", "packet limit")]
    [InlineData("{\"interface\":\"br-x\",\"byteLimit\":99999999999999}", "byte limit")]
    public async Task Captures_HugeOrZeroLimits_Are400s(string body, string what)
    {
        using var http = _factory.CreateClient(_operator.Token);

        var response = await http.PostAsync("/api/captures", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(what, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_FortyChainsEachJumpingTwice_AnswersUndeterminedWithinASecond()
    {
        var dump = new StringBuilder("*filter\n:FORWARD ACCEPT [0:0]\n");
        for (var k = 0; k <= 40; k++)
        {
            dump.Append(":C").Append(k).Append(" - [0:0]\n");
        }

        dump.Append("-A FORWARD -j C0\n-A FORWARD -j C0\n");
        for (var k = 0; k < 40; k++)
        {
            dump.Append("-A C").Append(k).Append(" -j C").Append(k + 1).Append("\n-A C").Append(k).Append(" -j C").Append(k + 1).Append('\n');
        }

        dump.Append("COMMIT\n");
        using var http = _factory.CreateClient(_outsider.Token);
        var watch = Stopwatch.StartNew();

        var response = await http.PostAsJsonAsync("/api/explain", new { ruleset = dump.ToString(), flow = new { inInterface = "br-a", outInterface = "br-b", source = "172.18.0.2", destination = "172.19.0.2", protocol = "icmp" } });

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"took {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"verdict\":\"UNDETERMINED\"", body, StringComparison.Ordinal);
        Assert.Contains("examined more than 200,000 rules", body, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> HostWideVariants => new()
    {
        { "{\"table\":\"filter\",\"chain\":\"FORWARD\",\"position\":1,\"target\":\"ACCEPT\"}", "FORWARD" },
        { "{\"table\":\"filter\",\"chain\":\"DOCKER-USER\",\"position\":1,\"target\":\"ACCEPT\"}", "would match every packet" },
        { "{\"table\":\"filter\",\"chain\":\"INPUT\",\"position\":1,\"source\":\"net:net1\",\"target\":\"DROP\"}", "INPUT" },
        { "{\"table\":\"raw\",\"chain\":\"PREROUTING\",\"position\":1,\"target\":\"DROP\"}", "raw PREROUTING" },
        { "{\"table\":\"filter\",\"chain\":\"DOCKER-USER\",\"position\":1,\"source\":\"172.16.0.0/12\",\"target\":\"ACCEPT\"}", "172.16.0.0/12" },
    };

    [Theory]
    [MemberData(nameof(HostWideVariants))]
    public async Task Experiments_VariantRulesThatReachBeyondTheRun_AreRefused_NamingTheRule(string rule, string named)
    {
        using var http = _factory.CreateClient(_operator.Token);
        var scenario = $$"""
            {"networks":[{"name":"net1"},{"name":"net2"}],"containers":[{"name":"c1","network":"net1"},{"name":"c2","network":"net2"}],
             "probes":[{"kind":"ping","from":"c2","to":"c1"}],"variants":[{"name":"wide","rules":[{{rule}}]}],"captures":["net1"]}
            """;

        var response = await http.PostAsync("/api/experiments", new StringContent($$"""{"name":"wide open","scenario":{{scenario}}}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("variant wide: rule '", text, StringComparison.Ordinal);
        Assert.Contains(named, text, StringComparison.Ordinal);
    }

    [GeneratedRegex("<input[^>]*name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    /// <summary>Signs in through the login form as a browser does; the client keeps the cookie.</summary>
    private async Task<HttpClient> CookieClientAsync(TestUser user)
    {
        var http = _factory.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        http.DefaultRequestHeaders.Authorization = null;
        var page = await http.GetStringAsync("/account/login");
        var token = AntiforgeryField().Match(page).Groups[1].Value;
        var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token),
            ["Input.UserName"] = user.Name,
            ["Input.Password"] = user.Password,
        });
        var signedIn = await http.PostAsync("/account/login", form);
        Assert.True(signedIn.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther, $"sign-in answered {signedIn.StatusCode}: token {token.Length} chars; {(await signedIn.Content.ReadAsStringAsync())[..Math.Min(300, (int)(signedIn.Content.Headers.ContentLength ?? 300))]}");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/me")).StatusCode);
        return http;
    }

    [Fact]
    public async Task CookieCalls_FromAnotherSiteOrWithoutOrigin_AreRefused_BearerCallsAreNot()
    {
        using var browser = await CookieClientAsync(_approver);

        async Task<HttpResponseMessage> ApproveAsync(HttpClient c, string? origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/changes/424242/approve") { Content = new ByteArrayContent([]) };
            if (origin is not null)
            {
                request.Headers.Add("Origin", origin);
            }

            return await c.SendAsync(request);
        }

        var foreign = await ApproveAsync(browser, "http://127.0.0.1:8080");
        Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);
        Assert.Contains("another site", await foreign.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await ApproveAsync(browser, null)).StatusCode);

        // From the dashboard's own origin the call reaches the service (which finds no such change).
        Assert.Equal(HttpStatusCode.NotFound, (await ApproveAsync(browser, "http://localhost")).StatusCode);

        // A script with a token is not a browser: no Origin needed.
        using var script = _factory.CreateClient(_approver.Token);
        Assert.Equal(HttpStatusCode.NotFound, (await ApproveAsync(script, "http://127.0.0.1:8080")).StatusCode);
    }

    [Fact]
    public async Task Hub_ForeignOrigin_IsRefused_OwnOriginAndNoOriginConnect()
    {
        using var http = _factory.CreateClient(_operator.Token);

        async Task<HttpStatusCode> NegotiateAsync(string? origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/hubs/lab/negotiate?negotiateVersion=1");
            if (origin is not null)
            {
                request.Headers.Add("Origin", origin);
            }

            return (await http.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.Forbidden, await NegotiateAsync("http://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await NegotiateAsync("http://127.0.0.1:8080"));
        Assert.Equal(HttpStatusCode.OK, await NegotiateAsync("http://localhost"));
        Assert.Equal(HttpStatusCode.OK, await NegotiateAsync(null));

        var ws = _factory.Server.CreateWebSocketClient();
        ws.ConfigureRequest = r =>
        {
            r.Headers.Origin = "http://evil.example";
            r.Headers.Authorization = "Bearer " + _operator.Token;
        };
        await Assert.ThrowsAnyAsync<Exception>(() => ws.ConnectAsync(new Uri(_factory.Server.BaseAddress, "hubs/lab"), CancellationToken.None));
    }

    [Fact]
    public async Task AllowedHosts_AnotherHostName_IsRefused_SoRebindingCannotReachSetup()
    {
        using var http = _factory.CreateAnonymousClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/setup");
        request.Headers.Host = "rebind.evil.example";

        var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/account/login")).StatusCode);
    }

    [Fact]
    public async Task RateLimits_ExpensiveCallsPerUser_Answer429WithRetryAfter_OtherUsersUnaffected()
    {
        using var greedy = _factory.CreateClient(_outsider.Token);
        var body = new { ruleset = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", flow = new { inInterface = "br-a", outInterface = "br-b", source = "172.18.0.2", destination = "172.19.0.2" } };
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 200 && limited is null; i++)
        {
            var r = await greedy.PostAsJsonAsync("/api/explain", body);
            limited = r.StatusCode == HttpStatusCode.TooManyRequests ? r : null;
        }

        Assert.NotNull(limited);
        Assert.True(int.Parse(limited.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        using var other = _factory.CreateClient(_operator.Token);
        Assert.Equal(HttpStatusCode.OK, (await other.PostAsJsonAsync("/api/explain", body)).StatusCode);
    }

    [Fact]
    public async Task SignIn_ManyWrongPasswords_Throttled_AndTheOwnersTokenKeepsWorking()
    {
        using var http = _factory.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        http.DefaultRequestHeaders.Authorization = null;
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 25; i++)
        {
            var page = await http.GetStringAsync("/account/login");
            var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["_handler"] = "login",
                ["__RequestVerificationToken"] = WebUtility.HtmlDecode(AntiforgeryField().Match(page).Groups[1].Value),
                ["Input.UserName"] = _operator.Name,
                ["Input.Password"] = "wrong-password-" + i,
            });
            statuses.Add((await http.PostAsync("/account/login", form)).StatusCode);
        }

        // Identity locked the account after 5; the throttle answers 429 past 10 attempts a minute for one account.
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.Equal(10, statuses.Count(c => c != HttpStatusCode.TooManyRequests));
        using var script = _factory.CreateClient(_operator.Token);
        Assert.Equal(HttpStatusCode.OK, (await script.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Hub_TokenRevokedWhileConnected_ConnectionClosedAndCallsRefused()
    {
        await using var hub = Hub(_approver.Token);
        var closed = new TaskCompletionSource();
        hub.Closed += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };
        await hub.StartAsync();
        Assert.Equal(JsonValueKind.Array, (await hub.InvokeAsync<JsonElement>("MyLabs")).ValueKind);

        using var owner = _factory.CreateClient(_approver.Token);
        var tokenId = (await owner.GetFromJsonAsync<JsonElement>("/api/tokens"))[0].GetProperty("id").GetInt32();
        Assert.Equal(HttpStatusCode.NoContent, (await owner.DeleteAsync($"/api/tokens/{tokenId}")).StatusCode);

        // The guard's sweep (every 20 s) closes the connection; nothing more can be called on it.
        Assert.Equal(1, await _factory.Services.GetRequiredService<Dashboard.Web.Hubs.HubSessionGuard>().SweepAsync());
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(15));
        await Assert.ThrowsAnyAsync<Exception>(() => hub.InvokeAsync<JsonElement>("MyLabs"));
    }

    [SkippableFact]
    [Trait("Category", "RealHost")]
    public async Task Verify_PingsOnlyInsideTheLabsOwnContainers()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var net = lab.Name("verify");
        await lab.CreateNetworkAsync("verify");
        var ours = await lab.RunBusyboxAsync("ours", net);
        var stranger = lab.Name("stranger");
        try
        {
            // A container nobody labelled as the lab's (someone's service on the same host).
            await lab.DockerAsync(["run", "-d", "--name", stranger, "--network", net, "busybox:latest", "sleep", "300"]);
            using var http = _factory.CreateClient(_operator.Token);
            http.Timeout = TimeSpan.FromMinutes(2);

            var response = await http.PostAsJsonAsync("/api/isolation/verify", new { by = "containers", protocol = "icmp" });

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var cells = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("cells").EnumerateArray().ToList();
            var touching = cells.Where(c => c.GetProperty("from").GetString() != c.GetProperty("to").GetString()
                && (c.GetProperty("from").GetString()!.StartsWith(stranger, StringComparison.Ordinal) || c.GetProperty("to").GetString()!.StartsWith(stranger, StringComparison.Ordinal))).ToList();
            Assert.NotEmpty(touching);
            Assert.All(touching, c =>
            {
                Assert.Equal("NotProbed", c.GetProperty("agreement").GetString());
                Assert.Contains("only the lab's own containers", c.GetProperty("detail").GetString(), StringComparison.Ordinal);
            });
            Assert.DoesNotContain(cells, c => c.GetProperty("detail").GetString()!.Contains($"{ours} is not one", StringComparison.Ordinal));
        }
        finally
        {
            await lab.DockerAsync(["rm", "-f", stranger]).ContinueWith(_ => { });
        }
    }

    [Fact]
    public async Task Headers_CspFramingSniffingReferrer_OnEveryResponse_KeysAndDatabaseKeptPrivate()
    {
        using var http = _factory.CreateAnonymousClient();

        var page = await http.GetAsync("/account/login");

        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-eval", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("same-origin", page.Headers.GetValues("Referrer-Policy").Single());
        if (_factory.Provider == DataOptions.Sqlite)
        {
            Assert.True(Directory.EnumerateFiles(Path.Combine(_factory.DataDirectory, "keys"), "key-*.xml").Any(), "data-protection keys are kept in the data folder");
        }
        else
        {
            await using var scope = _factory.Services.CreateAsyncScope();
            Assert.True(await scope.ServiceProvider.GetRequiredService<DashboardDbContext>().DataProtectionKeys.AnyAsync(), "data-protection keys are kept in the database");
            Assert.False(Directory.Exists(Path.Combine(_factory.DataDirectory, "keys")), "no key files beside the database");
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_factory.DataDirectory));
            if (_factory.Provider == DataOptions.Sqlite)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_factory.DatabasePath));
            }
        }
    }

    [Theory]
    [InlineData("/%09/evil.example")]
    [InlineData("/%0a/evil.example")]
    [InlineData("/\\evil.example")]
    [InlineData("//evil.example")]
    [InlineData("https://evil.example/")]
    public async Task SignIn_ReturnUrlThatIsNotALocalPath_GoesHome(string returnUrl)
    {
        using var http = _factory.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        http.DefaultRequestHeaders.Authorization = null;
        var page = await http.GetStringAsync("/account/login");
        var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(AntiforgeryField().Match(page).Groups[1].Value),
            ["Input.UserName"] = _operator.Name,
            ["Input.Password"] = _operator.Password,
        });

        var response = await http.PostAsync("/account/login?ReturnUrl=" + returnUrl, form);

        Assert.True(response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther, response.StatusCode.ToString());
        Assert.Equal("/", response.Headers.Location?.OriginalString.Replace("http://localhost", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Hub_JoinAnUnknownHost_IsRefused_NoGroupIsMade()
    {
        await using var hub = Hub(_operator.Token);
        await hub.StartAsync();

        var ex = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("JoinHost", new string('x', 5000)));

        Assert.Contains("no host named", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sessions_PasswordResetByAnAdministrator_EndsOtherCookieSessions_WithinTheRevalidationInterval()
    {
        // The interval is a minute by default (Auth:SessionRevalidation); a second here, so the test need not wait one.
        using var factory = new DashboardFactory(new() { ["Auth:SessionRevalidation"] = "00:00:01" });
        var vera = await factory.CreateUserAsync("vera", 1, LabRole.Operator);
        var http = factory.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        http.DefaultRequestHeaders.Authorization = null;
        var page = await http.GetStringAsync("/account/login");
        var signedIn = await http.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(AntiforgeryField().Match(page).Groups[1].Value),
            ["Input.UserName"] = vera.Name,
            ["Input.Password"] = vera.Password,
        }));
        Assert.True(signedIn.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.SeeOther, signedIn.StatusCode.ToString());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/me")).StatusCode);

        await using (var scope = factory.Services.CreateAsyncScope())
        {
            var admin = scope.ServiceProvider.GetRequiredService<Dashboard.Web.Identity.UserAdmin>();
            Assert.True((await admin.ResetPasswordAsync(await factory.AdminAsync(), vera.Id, "a-new-pass-word-9")).Succeeded);
        }

        await Task.Delay(1500);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/me")).StatusCode);
        http.Dispose();
    }

    [Fact]
    public void PageRateLimiter_SameBudgetAsTheApi_PerUser()
    {
        using var limiter = new Dashboard.Web.Identity.PageRateLimiter(new Dashboard.Web.Identity.RateLimitOptions { ExpensiveBurst = 3, ExpensivePerMinute = 6 });

        var answers = Enumerable.Range(0, 4).Select(_ => limiter.Refuse(_operator.Actor)).ToList();

        Assert.Equal(3, answers.Count(a => a is null));
        Assert.StartsWith("Too many of these requests", answers[3], StringComparison.Ordinal);
        Assert.Null(limiter.Refuse(_approver.Actor));
    }
}
