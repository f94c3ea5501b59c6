// Passkeys: the browser's half of WebAuthn for the profile's "Add a
// passkey" form and the sign-in page's "Sign in with a passkey" button.
// The server draws the challenge, keeps it in the session and checks the
// answer; this file only passes both through navigator.credentials.
(function () {
  "use strict";
  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  function bytes(s) { // base64url → ArrayBuffer
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    s += "===".slice((s.length + 3) % 4);
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function b64(buf) { // ArrayBuffer → base64url
    var u = new Uint8Array(buf), s = "";
    for (var i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function show(box, msg) {
    var p = box.querySelector("[data-passkey-error]");
    p.textContent = msg;
    p.hidden = !msg;
  }
  // post sends body to url and returns the parsed JSON answer, or throws
  // an Error whose message is the server's plain-words reason.
  function post(url, csrf, body, type) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: "POST", headers: headers, body: body, credentials: "same-origin" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error((j.error && j.error.message) || "The site answered " + r.status + ".");
          e.fields = (j.error && j.error.fields) || {};
          throw e;
        }
        return j;
      });
    });
  }
  // go follows the server's redirect; one to this very page (its #anchor
  // aside) reloads it, which assigning the address would not.
  function go(url) {
    var u = new URL(url, location.href);
    if (u.pathname === location.pathname && u.search === location.search) {
      history.replaceState(null, "", u.href);
      location.reload();
    } else {
      location.assign(u.href);
    }
  }
  function why(err, rpId) {
    if (rpId && rpId !== location.hostname) {
      return "Passkeys work only at the site's own address (" + rpId + "); you opened it as " + location.hostname + ".";
    }
    if (err && err.name === "NotAllowedError") return "The passkey prompt was closed or timed out; nothing was changed.";
    if (err && err.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    return (err && err.message) || "Something went wrong with the passkey.";
  }

  // Adding a passkey, from one's own profile; or joining with one, from
  // an invitation's page (the same ceremony; the server registers the
  // person with it).
  ["passkey-add", "passkey-join"].forEach(function (formID) {
  var add = document.getElementById(formID);
  if (add && supported) {
    add.hidden = false;
    var note = document.querySelector("[data-passkey-unsupported]");
    if (note) note.hidden = true;
    add.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = add.querySelector("button[type=submit]");
      var form = new URLSearchParams(new FormData(add));
      var rpId = "";
      button.setAttribute("aria-busy", "true");
      show(add, "");
      post(add.action, form.get("_csrf"), form, "application/x-www-form-urlencoded").then(function (o) {
        var pk = o.publicKey;
        rpId = pk.rp.id;
        pk.challenge = bytes(pk.challenge);
        pk.user.id = bytes(pk.user.id);
        (pk.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
          var r = cred.response;
          var body = JSON.stringify({
            id: cred.id, rawId: b64(cred.rawId), type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || undefined,
            response: {
              clientDataJSON: b64(r.clientDataJSON), attestationObject: b64(r.attestationObject),
              transports: r.getTransports ? r.getTransports() : []
            },
            clientExtensionResults: cred.getClientExtensionResults()
          });
          var url = add.dataset.finish + "?command_id=" + encodeURIComponent(form.get("command_id") || "");
          return post(url, o.csrf, body, "application/json");
        });
      }).then(function (done) {
        go(done.redirect);
      }).catch(function (err) {
        button.removeAttribute("aria-busy");
        var f = err.fields || {};
        show(add, f.name || f.username || f.display_name || why(err, rpId));
      });
    });
  }
  });

  // Signing in with a passkey: no username, the browser offers the
  // passkeys it holds for this site.
  var login = document.getElementById("passkey-login");
  if (login && supported) {
    login.hidden = false;
    var btn = login.querySelector("button");
    btn.addEventListener("click", function () {
      var next = login.dataset.next ? "?next=" + encodeURIComponent(login.dataset.next) : "";
      var rpId = "";
      btn.setAttribute("aria-busy", "true");
      show(login, "");
      post("/login/passkey/options", login.dataset.csrf, null, "").then(function (o) {
        var pk = o.publicKey;
        rpId = pk.rpId;
        pk.challenge = bytes(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        return navigator.credentials.get({ publicKey: pk }).then(function (cred) {
          var r = cred.response;
          var body = JSON.stringify({
            id: cred.id, rawId: b64(cred.rawId), type: cred.type,
            authenticatorAttachment: cred.authenticatorAttachment || undefined,
            response: {
              clientDataJSON: b64(r.clientDataJSON), authenticatorData: b64(r.authenticatorData),
              signature: b64(r.signature), userHandle: r.userHandle ? b64(r.userHandle) : undefined
            },
            clientExtensionResults: cred.getClientExtensionResults()
          });
          return post("/login/passkey" + next, o.csrf, body, "application/json");
        });
      }).then(function (done) {
        go(done.redirect);
      }).catch(function (err) {
        btn.removeAttribute("aria-busy");
        show(login, why(err, rpId));
      });
    });
  }
})();
