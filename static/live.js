// The ticket list refreshes itself when tickets change (htmx's SSE
// extension, templates/tickets.templ). A refresh replaces the list, so it
// would drop the tickets a person has ticked for a bulk change and what
// they were typing in the bulk bar. While some are ticked, or the bulk
// bar has the focus, the list stays as it is and says that it changed,
// with a link that shows the changes. No inline script: the page's CSP
// allows only files like this one.
(function () {
  "use strict";

  function busy(results) {
    if (results.querySelector("input[name=tickets]:checked")) return true;
    var bar = document.getElementById("bulk");
    return !!(bar && bar.contains(document.activeElement));
  }

  document.addEventListener("htmx:confirm", function (evt) {
    var results = evt.detail.elt;
    if (!results || results.id !== "results" || !busy(results)) return;
    evt.preventDefault(); // no request: the list and its ticks stay
    var note = document.getElementById("live-note");
    if (note) note.hidden = false;
  });
})();
