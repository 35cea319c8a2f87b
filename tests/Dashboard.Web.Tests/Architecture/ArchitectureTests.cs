using ArchUnitNET.Domain;
using ArchUnitNET.Loader;
using ArchUnitNET.xUnit;
using static ArchUnitNET.Fluent.ArchRuleDefinition;

namespace Dashboard.Web.Tests.Architecture;

/// <summary>
/// The layers as the folders show them, kept by the compiler's output: Web → App → Core, Data, Host (inward only), Agent → Host, Core; no
/// cycle between the application's feature folders; no HTTP, component or hub types in the application layer; no page
/// touches the database.
/// </summary>
public sealed class ArchitectureTests
{
    private static readonly ArchUnitNET.Domain.Architecture Layers = new ArchLoader().LoadAssemblies(
        typeof(Dashboard.Core.Firewall.Ruleset).Assembly,
        typeof(Dashboard.Host.DockerHostOptions).Assembly,
        typeof(Dashboard.Data.DashboardDbContext).Assembly,
        typeof(Dashboard.App.AppServices).Assembly,
        typeof(Program).Assembly,
        typeof(Dashboard.Agent.AgentConnection).Assembly,
        // The framework's assemblies whose types the rules name (loaded, so a dependency on them is seen whole).
        typeof(Microsoft.EntityFrameworkCore.DbContext).Assembly,
        typeof(Microsoft.AspNetCore.Http.HttpContext).Assembly,
        typeof(Microsoft.AspNetCore.Components.ComponentBase).Assembly,
        typeof(Microsoft.AspNetCore.SignalR.Hub).Assembly).Build();

    private static readonly IObjectProvider<IType> Web = Types().That().ResideInAssembly(typeof(Program).Assembly).As("the web layer");
    private static readonly IObjectProvider<IType> App = Types().That().ResideInAssembly(typeof(Dashboard.App.AppServices).Assembly).As("the application layer");

    [Fact]
    public void FeatureFolders_OfTheApplication_HaveNoCycles() =>
        ArchUnitNET.Fluent.Slices.SliceRuleDefinition.Slices().Matching("Dashboard.App.(*)").Should().BeFreeOfCycles().Check(Layers);

    [Fact]
    public void Application_DoesNotDependOnTheWebLayer() =>
        Types().That().Are(App).Should().NotDependOnAny(Web).Check(Layers);

    [Fact]
    public void InnerLayers_DoNotDependOnTheApplicationOrTheWeb() =>
        Types().That().ResideInAssembly(typeof(Dashboard.Core.Firewall.Ruleset).Assembly, typeof(Dashboard.Host.DockerHostOptions).Assembly, typeof(Dashboard.Data.DashboardDbContext).Assembly)
            .Should().NotDependOnAny(App).AndShould().NotDependOnAny(Web).Check(Layers);

    /// <summary>An agent is the host layer in its own process: it knows no application, database or web type.</summary>
    [Fact]
    public void Agent_DependsOnlyOnTheHostLayerAndCore() =>
        Types().That().ResideInAssembly(typeof(Dashboard.Agent.AgentConnection).Assembly)
            .Should().NotDependOnAny(App).AndShould().NotDependOnAny(Web)
            .AndShould().NotDependOnAny(Types().That().ResideInAssembly(typeof(Dashboard.Data.DashboardDbContext).Assembly))
            .Check(Layers);

    [Fact]
    public void Application_UsesNoHttpComponentOrHubTypes() =>
        Types().That().Are(App).Should().NotDependOnAny(Types().That().ResideInNamespaceMatching(@"^Microsoft\.AspNetCore\.(Http|Components|SignalR|Mvc|Routing|Builder|Authentication|Authorization)(\..*)?$"))
            .Check(Layers);

    [Fact]
    public void Pages_DoNotTouchTheDatabase() =>
        Types().That().ResideInNamespaceMatching(@"^Dashboard\.Web\.Components(\..*)?$").Should()
            .NotDependOnAny(Types().That().ResideInNamespaceMatching(@"^Microsoft\.EntityFrameworkCore(\..*)?$").Or().HaveFullName(typeof(Dashboard.Data.DashboardDbContext).FullName!))
            .Check(Layers);
}
