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
    },
    // A setting kept in this browser (the theme, the captures cleared from the list); null where storage is refused.
    load: function (key) {
        try {
            return window.localStorage.getItem("netlab." + key);
        } catch (e) {
            return null;
        }
    },
    save: function (key, value) {
        try {
            if (value === null) {
                window.localStorage.removeItem("netlab." + key);
            } else {
                window.localStorage.setItem("netlab." + key, value);
            }
        } catch (e) {
            // Storage refused (private mode, quota): the setting lasts for this page only.
        }
    }
};

// The account menu (a details element) closes on a click elsewhere, on Escape and after a link in it is followed.
document.addEventListener("click", function (e) {
    document.querySelectorAll("details.account-menu[open]").forEach(function (menu) {
        if (!menu.contains(e.target) || e.target.closest("a")) {
            menu.removeAttribute("open");
        }
    });
});
document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
        document.querySelectorAll("details.account-menu[open]").forEach(function (menu) {
            menu.removeAttribute("open");
            menu.querySelector("summary").focus();
        });
    }
});

// On a narrow screen the drawer lies over the page: following one of its links folds it again.
document.addEventListener("click", function (e) {
    var toggle = document.getElementById("drawer-toggle");
    if (toggle && toggle.checked && e.target.closest(".app-drawer a") && window.matchMedia("(max-width: 959.98px)").matches) {
        toggle.checked = false;
    }
});
