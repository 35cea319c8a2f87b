using Dashboard.Data.Entities;
using Dashboard.App.Labs;
using Microsoft.AspNetCore.Components.Authorization;

namespace Dashboard.Web.Components;

/// <summary>
/// One browser session's signed-in user and chosen lab (the lab picker in the app bar). Pages ask it who acts and in which
/// lab; the services they call check the role again, server-side.
/// </summary>
public sealed class LabSession(AuthenticationStateProvider auth, LabAccess access)
{
    private IReadOnlyList<LabMembership> _labs = [];
    private Actor? _actor;

    public event Action? Changed;

    public IReadOnlyList<LabMembership> Labs => _labs;

    public int? LabId { get; private set; }

    public LabMembership? Current => _labs.FirstOrDefault(l => l.LabId == LabId);

    public LabRole? Role => Current?.Role;

    public bool Can(LabRole minimum) => Role >= minimum;

    public bool CanOperateHost => _labs.Any(l => l.Role >= LabRole.Operator);

    public async Task<Actor> ActorAsync()
    {
        if (_actor is null)
        {
            var state = await auth.GetAuthenticationStateAsync();
            _actor = Actor.From(state.User);
            await RefreshAsync();
        }

        return _actor;
    }

    /// <summary>Re-reads memberships (after a role or member change); keeps the chosen lab while still a member.</summary>
    public async Task RefreshAsync()
    {
        _labs = await access.LabsOfAsync(_actor ?? await ActorAsync());
        if (LabId is null || _labs.All(l => l.LabId != LabId))
        {
            LabId = _labs.FirstOrDefault()?.LabId;
        }

        Changed?.Invoke();
    }

    /// <summary>
    /// For page handlers that change the host (verifying pings): checks the Operator role in some lab on the server, from
    /// the database (a refusal is audited). Returns why it is refused, or null when it may go ahead.
    /// </summary>
    public async Task<string?> HostActionAsync(string action)
    {
        var actor = await ActorAsync();
        try
        {
            // Refusals are audited by LabAccess; the caller audits what the action then did.
            await access.RequireHostOperatorAsync(actor, action);
        }
        catch (LabAccessException ex)
        {
            return ex.Message;
        }

        return null;
    }

    public void Select(int labId)
    {
        if (_labs.Any(l => l.LabId == labId) && LabId != labId)
        {
            LabId = labId;
            Changed?.Invoke();
        }
    }
}
