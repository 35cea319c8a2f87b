// Small helpers the Blazor components call.
window.netlab = {
    // Brings an element into view (a rule linked from a trace, a chain linked from a jump).
    scrollToId: function (id) {
        var el = document.getElementById(id);
        if (el) {
            el.scrollIntoView({ block: "center" });
            return true;
        }
        return false;
    }
};
