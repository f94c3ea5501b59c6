package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// withAuthenticator gives a browser a virtual platform authenticator
// (CTAP2, internal, resident keys, user verification that succeeds), as a
// laptop's fingerprint reader would be.
func withAuthenticator(tb testing.TB, ctx context.Context) {
	tb.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	off := false
	if _, err := chromedp.Call(cctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
		tb.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(cctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		tb.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
}

// freePort finds a loopback port nobody listens on, so the site's address
// (and so --base-url) is known before it starts.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// shots keeps screenshots at a desktop and a phone width when
// BRAID_SCREENSHOTS names a directory, and checks nothing sticks out
// sideways either way.
func (p *person) shots(name string) {
	p.tb.Helper()
	for _, w := range []int64{1280, 390} {
		p.do(chromedp.EmulateViewport(w, 900))
		p.waitFor("no sideways scrolling at "+strconv.FormatInt(w, 10)+" px", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
		if p.shot != "" {
			p.screenshot(name + "-" + strconv.FormatInt(w, 10))
		}
	}
	p.do(chromedp.EmulateViewport(1280, 900))
}

// The browser suite: the site's first person (an admin) invites Bob from
// /admin; Bob joins through the link with a passkey (no password), signs
// out and back in with it (no username, no password) and opens a ticket
// mentioning the admin; the admin sees it in the inbox and gets the mail
// digest from a real SMTP server, whose link works. Then the two edit the
// ticket at once (the 409 page), and Bob removes his passkey, after which
// it no longer signs him in.
func TestPasskeysInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	shots := os.Getenv("BRAID_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const pass = "mail-Pa55"
	sink, smtpAddr := startSMTP(t, "braid", pass)
	port := strconv.Itoa(freePort(t))
	base := "http://localhost:" + port
	s := startSite(t, "--addr", "127.0.0.1:"+port, "--base-url", base,
		"--smtp-url", "smtp://braid:"+pass+"@"+smtpAddr, "--mail-from", "braid@example.org", "--mail-every", "1s")
	ada := &person{tb: t, ctx: newChromium(t), base: base, shot: shots}
	bob := &person{tb: t, ctx: newChromium(t), base: base, shot: shots}
	withAuthenticator(t, bob.ctx)

	// Ada, the first person, is admin: she asks for mail and invites Bob.
	ada.register("ada")
	ada.visit("/inbox")
	ada.do(chromedp.SendKeys(chromedp.ID("email"), "ada@example.org"), chromedp.Click(chromedp.CSS(`form[action="/inbox/email"] button`)))
	ada.waitFor("the address kept", `document.body.innerText.includes("Digests go to ada@example.org") && document.querySelector("#email") && document.querySelector("#email").value === "ada@example.org"`)
	ada.visit("/admin")
	ada.do(chromedp.SendKeys(chromedp.ID("note"), "for Bob"), chromedp.Click(chromedp.CSS(`form[action="/admin/invitations"] button`)))
	ada.waitFor("the invitation link", `!!document.querySelector(".banner a[href*='/join/']")`)
	link := ada.eval(`document.querySelector(".banner a[href*='/join/']").href`)
	if !strings.HasPrefix(link, base+"/join/") {
		t.Fatalf("invitation link %q: want it under %s", link, base)
	}

	// Bob joins with a passkey instead of a password: one command
	// registers him, adds the passkey and spends the invitation.
	bob.do(chromedp.Navigate(link))
	bob.waitFor("the passkey join form", `!!document.querySelector("#passkey-join") && !document.querySelector("#passkey-join").hidden`)
	bob.shots("join")
	bob.do(
		chromedp.SendKeys(chromedp.ID("pj-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("pj-display_name"), "Bob Builder"),
		chromedp.Click(chromedp.CSS(`#passkey-join button[type=submit]`)),
	)
	bob.waitFor("joined", `location.pathname === "/tickets" && document.body.innerText.includes("joined with a passkey")`)
	bobID := idOf(t, s.DB, "bob")
	if n, actor, data := eventsOfType(t, s.DB, "passkey_added"); n != 1 || actor != bobID || !strings.Contains(data, `"name":"joined with"`) {
		t.Fatalf("passkey_added: %d events, actor %q, data %s", n, actor, data)
	}
	if cmds := commandsOf(t, s.DB, bobID); len(cmds) != 1 || cmds[0] != "user_registered passkey_added invitation_used" {
		t.Fatalf("bob's first events: %q, want one command: user_registered passkey_added invitation_used", cmds)
	}
	// He has no password: signing in with one is refused.
	if r := newBrowser(t, base).signIn("bob", "correct horse battery"); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bob signs in with a password he never set: %d", r.status)
	}
	bob.visit("/people/bob")
	bob.waitFor("the set-a-password form", `!!document.querySelector("form[action='/account/password']") && document.body.innerText.includes("Set a password") && !document.querySelector("form[action='/account/password'] [name=current_password]")`)
	bob.shots("profile-passkeys")
	// The passkey signs him in (below); a password can come later.
	bob.do(
		chromedp.SendKeys(chromedp.ID("new_password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.ID("new_password_confirmation"), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action='/account/password'] button[type=submit]`)),
	)
	bob.waitFor("the password set", `document.body.innerText.includes("Password set.") && !!document.querySelector("form[action='/account/password'] [name=current_password]")`)
	wantStatus(t, "bob signs in with the password he set", newBrowser(t, base).signIn("bob", "correct horse battery"), http.StatusSeeOther)

	// Signed out, Bob signs in with the passkey alone.
	bob.signOut()
	bob.visit("/login")
	bob.waitFor("the passkey button", `!document.querySelector("#passkey-login").hidden`)
	bob.shots("login")
	bob.do(chromedp.Click(chromedp.CSS(`#passkey-login button`)))
	bob.waitFor("signed in by passkey", `location.pathname === "/tickets" && document.querySelector("header").innerText.includes("Bob Builder")`)

	// He opens a ticket mentioning Ada.
	bob.visit("/tickets/new")
	bob.do(
		chromedp.SendKeys(chromedp.ID("title"), "Export button does nothing"),
		chromedp.SendKeys(chromedp.ID("body"), "@ada pressing Export shows no file."),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	bob.waitFor("the ticket", `location.pathname === "/tickets/1"`)

	// Ada sees it in her inbox, and by mail.
	ada.visit("/inbox")
	ada.waitFor("the notification", `document.querySelector("ul.inbox") && document.querySelector("ul.inbox").innerText.includes("Export button does nothing")`)
	ada.shots("inbox")
	var got sunkMail
	select {
	case got = <-sink.got:
	case <-time.After(10 * time.Second):
		t.Fatalf("no digest arrived in 10 s")
	}
	_, body := digestBody(t, got.msg)
	m := regexp.MustCompile(`(?m)^Your inbox: (\S+)\r?$`).FindStringSubmatch(body)
	if got.to != "ada@example.org" || m == nil || !strings.Contains(body, "Export button does nothing") {
		t.Fatalf("digest to %q:\n%s", got.to, body)
	}
	ada.visit(strings.TrimPrefix(m[1], base))
	if !strings.HasPrefix(m[1], base+"/") {
		t.Fatalf("the digest links to %s, not the site's address %s", m[1], base)
	}
	ada.waitFor("the digest's link opens the inbox", `location.pathname === "/inbox" && document.querySelector("ul.inbox").innerText.includes("Export button does nothing")`)

	// Both edit the ticket; Bob saves first; Ada's title is kept beside his.
	ada.visit("/tickets/1/edit")
	bob.visit("/tickets/1/edit")
	bob.do(chromedp.SetValue(chromedp.ID("title"), "Export button does nothing in Firefox"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	bob.waitFor("bob's edit saved", `location.pathname === "/tickets/1" && document.querySelector("h1").innerText.includes("in Firefox")`)
	ada.do(chromedp.SetValue(chromedp.ID("title"), "Export writes no file"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	ada.waitFor("the conflict", `document.body.innerText.includes("changed this ticket") && document.querySelector("#title").value === "Export writes no file" && document.querySelector(".current-title").innerText.includes("in Firefox")`)
	ada.shots("edit-conflict")

	// Bob removes his passkey; it no longer signs him in.
	bob.visit("/people/bob")
	bob.do(chromedp.Click(chromedp.CSS(`ul.passkeys form button`)))
	bob.waitFor("no passkeys", `location.pathname === "/people/bob" && !document.querySelector("ul.passkeys") && document.body.innerText.includes("removed")`)
	if n, _, _ := eventsOfType(t, s.DB, "passkey_removed"); n != 1 {
		t.Fatalf("passkey_removed: %d events, want 1", n)
	}
	bob.signOut()
	bob.visit("/login")
	bob.waitFor("the passkey button", `!document.querySelector("#passkey-login").hidden`)
	bob.do(chromedp.Click(chromedp.CSS(`#passkey-login button`)))
	bob.waitFor("the refusal", `location.pathname === "/login" && !document.querySelector("#passkey-login [data-passkey-error]").hidden`)
	if msg := bob.text("#passkey-login [data-passkey-error]"); !strings.Contains(msg, "did not sign you in") {
		t.Fatalf("refusal message %q", msg)
	}
	if shots != "" {
		bob.screenshot("login-passkey-refused")
		t.Logf("screenshots in %s", filepath.Clean(shots))
	}
	verifyDB(t, s.DB)
}

func (p *person) eval(js string) string {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.tb.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

func (p *person) signOut() {
	p.tb.Helper()
	p.do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	p.waitFor("signed out", `location.pathname === "/login"`)
}
