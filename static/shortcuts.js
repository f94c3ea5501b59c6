// Keyboard shortcuts (docs/triage.md): / search, c new ticket, j/k move
// the selection on the list, Enter or o open it, e edit the ticket, ?
// this list. They never fire while typing (inputs, textareas, selects,
// contenteditable) nor with Ctrl, Alt or Meta held. No inline script: the
// page's CSP allows only files like this one.
(function () {
  "use strict";

  function typing(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr[data-ticket]"));
  }

  var current = -1;

  function select(i) {
    var rs = rows();
    if (rs.length === 0) return;
    i = Math.max(0, Math.min(rs.length - 1, i));
    rs.forEach(function (r) { r.classList.remove("kbd-current"); r.removeAttribute("aria-current"); });
    current = i;
    rs[i].classList.add("kbd-current");
    rs[i].setAttribute("aria-current", "true");
    rs[i].scrollIntoView({ block: "nearest" });
  }

  function selectedLink() {
    var r = rows()[current];
    return r ? r.querySelector("a[href^='/tickets/']") : null;
  }

  var shortcuts = [
    ["/", "Search"],
    ["c", "New ticket"],
    ["j", "Next ticket on the list"],
    ["k", "Previous ticket on the list"],
    ["Enter, o", "Open the chosen ticket"],
    ["e", "Edit the ticket (on its page)"],
    ["?", "Show this list"]
  ];

  function help() {
    var d = document.getElementById("shortcuts-help");
    if (!d) {
      d = document.createElement("dialog");
      d.id = "shortcuts-help";
      d.setAttribute("aria-labelledby", "shortcuts-title");
      var art = document.createElement("article");
      var h = document.createElement("h2");
      h.id = "shortcuts-title";
      h.textContent = "Keyboard shortcuts";
      art.appendChild(h);
      var dl = document.createElement("dl");
      shortcuts.forEach(function (s) {
        var dt = document.createElement("dt");
        s[0].split(", ").forEach(function (k, i) {
          if (i > 0) dt.appendChild(document.createTextNode(" or "));
          var kbd = document.createElement("kbd");
          kbd.textContent = k;
          dt.appendChild(kbd);
        });
        var dd = document.createElement("dd");
        dd.textContent = s[1];
        dl.appendChild(dt);
        dl.appendChild(dd);
      });
      art.appendChild(dl);
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      close.addEventListener("click", function () { d.close(); });
      art.appendChild(close);
      d.appendChild(art);
      document.body.appendChild(d);
    }
    if (!d.open) d.showModal();
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.isComposing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (typing(ev.target) || typing(document.activeElement)) return;
    var dialog = document.getElementById("shortcuts-help");
    if (dialog && dialog.open) return; // Escape closes it; nothing else fires behind it
    var link;
    switch (ev.key) {
      case "/":
        var q = document.querySelector("input[type=search], input[name=q]");
        if (!q) return;
        ev.preventDefault();
        q.focus();
        return;
      case "c":
        ev.preventDefault();
        window.location.assign("/tickets/new");
        return;
      case "j":
      case "k":
        if (rows().length === 0) return;
        ev.preventDefault();
        select(current < 0 ? 0 : current + (ev.key === "j" ? 1 : -1));
        return;
      case "Enter":
      case "o":
        link = selectedLink();
        if (!link) return;
        ev.preventDefault();
        window.location.assign(link.getAttribute("href"));
        return;
      case "e":
        link = document.querySelector("a[data-shortcut=edit]");
        if (!link) return;
        ev.preventDefault();
        window.location.assign(link.getAttribute("href"));
        return;
      case "?":
        ev.preventDefault();
        help();
        return;
    }
  });
})();
