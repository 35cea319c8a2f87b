using System.Collections.Concurrent;
using Microsoft.AspNetCore.Components;

namespace Dashboard.Web.Components.Shared;

/// <summary>
/// MudBlazor's icons as plain markup in MudBlazor's classes, for chrome every circuit renders (the app bar, the menu):
/// an element costs a circuit nothing beyond its frames, a MudIconButton inside a MudTooltip about six components. Each
/// icon's markup is one string shared by every circuit.
/// </summary>
public static class IconMarkup
{
    private static readonly ConcurrentDictionary<string, MarkupString> Icons = new(StringComparer.Ordinal);

    public static MarkupString Svg(string icon) => Icons.GetOrAdd(icon, i =>
        new($"<svg class=\"mud-icon-root mud-svg-icon mud-icon-size-medium\" focusable=\"false\" viewBox=\"0 0 24 24\" aria-hidden=\"true\" role=\"img\">{i}</svg>"));
}
