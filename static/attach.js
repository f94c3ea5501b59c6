// Pasted images (docs/attachments.md): pasting an image into a textarea of
// a form with a file input named "files" adds the image to that input and
// inserts a Markdown image reference at the cursor: /files/{sha256}/{name},
// the address the server will give the same bytes. Without JavaScript the file
// input works alone. No inline script: the page's CSP stays strict.
(function () {
  "use strict";
  function stamp() {
    var d = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + two(d.getMonth() + 1) + two(d.getDate()) + "-" + two(d.getHours()) + two(d.getMinutes()) + two(d.getSeconds());
  }
  document.addEventListener("paste", function (ev) {
    var area = ev.target;
    if (!area || area.tagName !== "TEXTAREA" || !area.form) return;
    var input = area.form.querySelector('input[type="file"][name="files"]');
    if (!input || typeof DataTransfer === "undefined" || !ev.clipboardData) return;
    var items = ev.clipboardData.files;
    var images = [];
    for (var i = 0; i < items.length; i++) {
      if (/^image\/(png|jpeg|gif|webp)$/.test(items[i].type)) images.push(items[i]);
    }
    if (images.length === 0) return;
    ev.preventDefault();
    var dt = new DataTransfer();
    for (var j = 0; j < input.files.length; j++) dt.items.add(input.files[j]);
    var named = images.map(function (f, k) {
      var ext = f.type.split("/")[1].replace("jpeg", "jpg");
      var file = new File([f], "pasted-" + stamp() + (k ? "-" + k : "") + "." + ext, { type: f.type });
      dt.items.add(file);
      return file;
    });
    input.files = dt.files;
    var at = area.selectionStart || 0, end = area.selectionEnd || at;
    // The file's address is its SHA-256, computed here as the server will.
    Promise.all(named.map(function (f) {
      if (!window.crypto || !crypto.subtle) return Promise.resolve(f.name);
      return f.arrayBuffer().then(function (b) { return crypto.subtle.digest("SHA-256", b); }).then(function (h) {
        var hex = Array.prototype.map.call(new Uint8Array(h), function (x) { return (x < 16 ? "0" : "") + x.toString(16); }).join("");
        return "/files/" + hex + "/" + encodeURIComponent(f.name);
      });
    })).then(function (urls) {
      var refs = urls.map(function (u, k) { return "![" + named[k].name + "](" + u + ")\n"; }).join("");
      area.value = area.value.slice(0, at) + refs + area.value.slice(end);
      area.selectionStart = area.selectionEnd = at + refs.length;
      area.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });
})();
