namespace Dashboard.App.Changes;

/// <summary>Configuration section "Changes": how often time-to-lives are checked, where interface names are looked up.</summary>
public sealed class ChangeOptions
{
    public const string Section = "Changes";

    public TimeSpan ExpiryPoll { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Where interface names are checked (a folder per interface, as in /sys/class/net).</summary>
    public string InterfacesPath { get; set; } = "/sys/class/net";
}
