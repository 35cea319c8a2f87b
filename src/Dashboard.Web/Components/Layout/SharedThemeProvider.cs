using System.Collections.Concurrent;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;
using Microsoft.AspNetCore.Components.RenderTree;
using MudBlazor;

// BL0006: this reads the frames MudBlazor's provider has just built, to share them as one string; any frame it does not
// know makes it render as MudBlazor does, and a test compares its output with MudBlazor's.
#pragma warning disable BL0006

namespace Dashboard.Web.Components.Layout;

/// <summary>
/// MudBlazor's theme provider (its dark-mode watch and everything else unchanged) whose output, the whole theme as
/// style elements of about 23 KB, is one string shared by every circuit showing the same theme: the provider builds it
/// afresh on each render, and each open page would otherwise keep its own copy for as long as it stays open.
/// </summary>
public sealed class SharedThemeProvider : MudThemeProvider
{
    private const int MaxShared = 16; // themes × light/dark × scrollbar: a handful in practice
    private static readonly ConcurrentDictionary<string, MarkupString> Shared = new(StringComparer.Ordinal);

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        var scratch = new RenderTreeBuilder();
        base.BuildRenderTree(scratch);
        var frames = scratch.GetFrames();
        if (HtmlOf(frames.Array, 0, frames.Count) is not { } html)
        {
            // Something other than plain elements, text and markup (a future MudBlazor may render a component here):
            // render it as MudBlazor does, unshared.
            base.BuildRenderTree(builder);
            return;
        }

        builder.AddMarkupContent(0, Share(html).Value);
    }

    /// <summary>The one instance of this markup every circuit keeps (a few themes at most; beyond them, the markup itself).</summary>
    internal static MarkupString Share(string html) =>
        Shared.TryGetValue(html, out var known) ? known
        : Shared.Count < MaxShared ? Shared.GetOrAdd(html, new MarkupString(html))
        : new MarkupString(html);

    /// <summary>The frames as HTML, or null when they hold anything but elements, attributes, text, markup and regions.</summary>
    internal static string? HtmlOf(RenderTreeFrame[] frames, int start, int end)
    {
        var html = new StringBuilder();
        return Append(html, frames, start, end, rawText: false) ? html.ToString() : null;
    }

    private static bool Append(StringBuilder html, RenderTreeFrame[] frames, int start, int end, bool rawText)
    {
        var i = start;
        while (i < end)
        {
            var frame = frames[i];
            switch (frame.FrameType)
            {
                case RenderTreeFrameType.Element:
                    var name = frame.ElementName;
                    html.Append('<').Append(name);
                    var child = i + 1;
                    var last = i + frame.ElementSubtreeLength;
                    for (; child < last && frames[child].FrameType == RenderTreeFrameType.Attribute; child++)
                    {
                        var attribute = frames[child];
                        switch (attribute.AttributeValue)
                        {
                            case string s:
                                html.Append(' ').Append(attribute.AttributeName).Append("=\"").Append(HtmlEncoder.Default.Encode(s)).Append('"');
                                break;
                            case bool b:
                                if (b)
                                {
                                    html.Append(' ').Append(attribute.AttributeName);
                                }

                                break;
                            default:
                                return false; // event handlers and other values exist only on a live component
                        }
                    }

                    html.Append('>');
                    if (!Append(html, frames, child, last, name is "style" or "script"))
                    {
                        return false;
                    }

                    html.Append("</").Append(name).Append('>');
                    i = last;
                    break;
                case RenderTreeFrameType.Text:
                    html.Append(rawText ? frame.TextContent : HtmlEncoder.Default.Encode(frame.TextContent));
                    i++;
                    break;
                case RenderTreeFrameType.Markup:
                    html.Append(frame.MarkupContent);
                    i++;
                    break;
                case RenderTreeFrameType.Region:
                    if (!Append(html, frames, i + 1, i + frame.RegionSubtreeLength, rawText))
                    {
                        return false;
                    }

                    i += frame.RegionSubtreeLength;
                    break;
                default:
                    return false;
            }
        }

        return true;
    }
}
