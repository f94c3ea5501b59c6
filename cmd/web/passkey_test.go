package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// softKey is a passkey held in the test: a P-256 key on an authenticator
// that speaks WebAuthn as a browser relays it (attestation "none"), so the
// server's checks run on real signatures without a browser.
type softKey struct {
	tb     testing.TB
	origin string // what the browser would write in clientDataJSON
	rpID   string
	id     []byte
	handle []byte // the user handle given at registration
	key    *ecdsa.PrivateKey
	count  uint32
}

func newSoftKey(tb testing.TB, origin, rpID string) *softKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{tb: tb, origin: origin, rpID: rpID, id: id, key: k}
}

var b64u = base64.RawURLEncoding

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

func (k *softKey) authData(flags byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	k.count++
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

// create answers navigator.credentials.create for the options the server
// sent: the JSON body the site's script would post.
func (k *softKey) create(opts map[string]any) []byte {
	pk := opts["publicKey"].(map[string]any)
	user := pk["user"].(map[string]any)
	h, err := b64u.DecodeString(user["id"].(string))
	if err != nil {
		k.tb.Fatalf("user handle: %v", err)
	}
	k.handle = h
	x, y := k.key.PublicKey.X.FillBytes(make([]byte, 32)), k.key.PublicKey.Y.FillBytes(make([]byte, 32))
	cose, _ := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	attested := make([]byte, 16) // AAGUID: zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	ad := k.authData(0x45, attested) // UP, UV, AT
	ao, _ := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	body, _ := json.Marshal(map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(k.clientData("webauthn.create", pk["challenge"].(string))),
			"attestationObject": b64u.EncodeToString(ao), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{}})
	return body
}

// get answers navigator.credentials.get for challenge.
func (k *softKey) get(challenge string) []byte {
	cd := k.clientData("webauthn.get", challenge)
	ad := k.authData(0x05, nil) // UP, UV
	sum := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.tb.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
			"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.handle)},
		"clientExtensionResults": map[string]any{}})
	return body
}

// postJSON posts body as the site's script does: JSON, the CSRF token in
// its header.
func (b *browser) postJSON(path, csrf string, body []byte) (answer, map[string]any) {
	b.tb.Helper()
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(string(body)))
	if err != nil {
		b.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	res, err := b.c.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return answer{status: res.StatusCode}, out
}

var dataCSRFRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

// passkeyOptions starts a passkey sign-in from /login: the options and
// the CSRF token for the answer.
func (b *browser) passkeyOptions() (challenge, csrf string) {
	b.tb.Helper()
	m := dataCSRFRE.FindStringSubmatch(b.get("/login").body)
	if m == nil {
		b.tb.Fatal("no passkey button on /login")
	}
	a, o := b.postJSON("/login/passkey/options", m[1], nil)
	if a.status != http.StatusOK {
		b.tb.Fatalf("passkey options: got %d %v", a.status, o)
	}
	return o["publicKey"].(map[string]any)["challenge"].(string), o["csrf"].(string)
}

func passkeySignedIn(b *browser) bool { return b.get("/tickets").status == http.StatusOK }

// addPasskey adds k to the signed-in person's account from their profile.
func (b *browser) addPasskey(user, name string, k *softKey) (answer, map[string]any) {
	b.tb.Helper()
	// The options come from the profile's form (name, command_id, _csrf).
	f := b.form("/people/"+user, "/account/passkeys/options", url.Values{"name": {name}})
	res := b.post("/account/passkeys/options", f)
	if res.status != http.StatusOK {
		return res, nil
	}
	var o map[string]any
	json.Unmarshal([]byte(res.body), &o)
	return b.postJSON("/account/passkeys?command_id="+f.Get("command_id"), o["csrf"].(string), k.create(o))
}

// Passkeys over HTTP with a software authenticator: added, signing in;
// every bad answer (a wrong challenge, a replay, an unknown or removed
// key, a mangled signature, garbage) is a 4xx that signs no one in and
// appends nothing.
func TestPasskeyRefusals(t *testing.T) {
	const origin = "https://braid.test"
	s := startServer(t, "--base-url", origin)
	alice := newBrowser(t, s.URL).from("127.0.0.80")
	alice.register("alice")
	key := newSoftKey(t, origin, "braid.test")

	// A name is required, and checked like every field.
	if a := alice.post("/account/passkeys/options", alice.form("/people/alice", "/account/passkeys/options", url.Values{"name": {""}})); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("a passkey without a name: got %d, want 422", a.status)
	}
	// An answer to a challenge the server never drew is refused.
	before := countEvents(t, s.DB)
	f := alice.form("/people/alice", "/account/passkeys/options", url.Values{"name": {"laptop"}})
	res := alice.post("/account/passkeys/options", f)
	var opts map[string]any
	json.Unmarshal([]byte(res.body), &opts)
	opts["publicKey"].(map[string]any)["challenge"] = b64u.EncodeToString([]byte("not the server's challenge at all"))
	if a, _ := alice.postJSON("/account/passkeys?command_id="+f.Get("command_id"), opts["csrf"].(string), key.create(opts)); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("adding with a wrong challenge: got %d, want 422", a.status)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("a refused passkey appended %d events", n-before)
	}

	if a, o := alice.addPasskey("alice", "laptop", key); a.status != http.StatusOK {
		t.Fatalf("add passkey: got %d %v", a.status, o)
	}
	if n, actor, data := eventsOfType(t, s.DB, "passkey_added"); n != 1 || actor != idOf(t, s.DB, "alice") || strings.Contains(data, "public") || !strings.Contains(data, "credential_id_hash") {
		t.Fatalf("passkey_added: %d, actor %q, data %s", n, actor, data)
	}

	// Signing in with it works, in a fresh browser.
	visitor := newBrowser(t, s.URL).from("127.0.0.81")
	chal, csrf := visitor.passkeyOptions()
	good := key.get(chal)
	if a, o := visitor.postJSON("/login/passkey", csrf, good); a.status != http.StatusOK || o["username"] != "alice" || o["user"] != idOf(t, s.DB, "alice") {
		t.Fatalf("sign in with passkey: got %d %v", a.status, o)
	}
	if !passkeySignedIn(visitor) {
		t.Fatal("not signed in after the passkey answered")
	}

	before = countEvents(t, s.DB)
	refused := func(what string, b *browser, csrf string, body []byte) {
		t.Helper()
		a, o := b.postJSON("/login/passkey", csrf, body)
		if a.status < 400 || a.status >= 500 {
			t.Errorf("%s: got %d %v, want a 4xx", what, a.status, o)
		}
		if passkeySignedIn(b) {
			t.Errorf("%s: signed in", what)
		}
		if n := countEvents(t, s.DB); n != before {
			t.Errorf("%s: appended %d events", what, n-before)
		}
	}
	// The same answer again, in another browser with no ceremony, and
	// in one whose ceremony has another challenge.
	other := newBrowser(t, s.URL).from("127.0.0.82")
	_, csrf = other.passkeyOptions()
	refused("a replayed answer", other, csrf, good)
	refused("a replayed answer, its ceremony spent", other, csrf, good)
	// An answer to a challenge the server did not draw.
	_, csrf = other.passkeyOptions()
	refused("a wrong challenge", other, csrf, key.get(b64u.EncodeToString([]byte("a challenge of my own choosing!!"))))
	// A key the site does not know, for alice's handle.
	stranger := newSoftKey(t, origin, "braid.test")
	stranger.handle = key.handle
	_, csrf = other.passkeyOptions()
	refused("an unknown credential", other, csrf, stranger.get(chal))
	chal2, csrf := other.passkeyOptions()
	refused("an unknown credential", other, csrf, stranger.get(chal2))
	// A signature that does not verify.
	chal2, csrf = other.passkeyOptions()
	bad := key.get(chal2)
	var m map[string]any
	json.Unmarshal(bad, &m)
	m["response"].(map[string]any)["signature"] = b64u.EncodeToString([]byte("0"))
	bad, _ = json.Marshal(m)
	refused("a bad signature", other, csrf, bad)
	// Another site's origin.
	chal2, csrf = other.passkeyOptions()
	phish := *key
	phish.origin = "https://braid.test.evil.example"
	refused("another origin", other, csrf, phish.get(chal2))
	// A challenge serves once: after a refused answer, even the right
	// answer to it is refused (start again).
	chal2, csrf = other.passkeyOptions()
	refused("a garbled answer", other, csrf, []byte(`{}`))
	refused("the right answer to a spent challenge", other, csrf, key.get(chal2))
	// A copy of the key whose sign count went backwards (a clone).
	chal2, csrf = other.passkeyOptions()
	clone := *key
	clone.count = 0
	refused("a cloned authenticator", other, csrf, clone.get(chal2))
	// Garbage, and no ceremony at all.
	_, csrf = other.passkeyOptions()
	refused("garbage", other, csrf, []byte(`{"id":`))

	// Removed, the key signs no one in.
	id := regexp.MustCompile(`/account/passkeys/([0-9a-f]{64})/remove`).FindStringSubmatch(alice.get("/people/alice").body)
	if id == nil {
		t.Fatal("no remove button on the profile")
	}
	bob := newBrowser(t, s.URL).from("127.0.0.83")
	bob.register("bob")
	if a := bob.post("/account/passkeys/"+id[1]+"/remove", bob.form("/people/bob", "/account/sessions", nil)); a.status != http.StatusNotFound {
		t.Fatalf("bob removing alice's passkey: got %d, want 404", a.status)
	}
	if n, _, _ := eventsOfType(t, s.DB, "passkey_removed"); n != 0 {
		t.Fatalf("bob's attempt appended passkey_removed")
	}
	if a := alice.post("/account/passkeys/"+id[1]+"/remove", alice.form("/people/alice", "/account/passkeys/"+id[1]+"/remove", nil)); a.status != http.StatusSeeOther {
		t.Fatalf("remove: got %d", a.status)
	}
	if n, _, _ := eventsOfType(t, s.DB, "passkey_removed"); n != 1 {
		t.Fatalf("passkey_removed: %d events", n)
	}
	before = countEvents(t, s.DB)
	chal2, csrf = other.passkeyOptions()
	refused("a removed passkey", other, csrf, key.get(chal2))
	// Nobody removes another's passkey, nor one twice.
	if a := alice.post("/account/passkeys/"+id[1]+"/remove", alice.form("/people/alice", "/account/sessions", nil)); a.status != http.StatusNotFound {
		t.Fatalf("removing twice: got %d, want 404", a.status)
	}
	verifyDB(t, s.DB)
}

// A site whose address is an IP (here through --base-url) cannot have
// passkeys: the sign-in page offers none, the profile says why, and the
// passkey routes answer 404 with nothing kept.
func TestPasskeysOffForAnIPAddress(t *testing.T) {
	s := startServer(t, "--base-url", "http://192.0.2.7:8080")
	alice := newBrowser(t, s.URL).from("127.0.0.84")
	if page := alice.get("/login").body; strings.Contains(page, "passkey") {
		t.Fatal("the sign-in page offers passkeys on a site that cannot have them")
	}
	alice.register("alice")
	if page := alice.get("/people/alice").body; !strings.Contains(page, "Passkeys are not set up on this site") || strings.Contains(page, `id="passkey-add"`) {
		t.Fatal("the profile does not say passkeys are off")
	}
	f := alice.form("/people/alice", "/account/name", nil)
	before := countEvents(t, s.DB)
	if a, _ := alice.postJSON("/login/passkey/options", f.Get("_csrf"), nil); a.status != http.StatusNotFound {
		t.Fatalf("passkey options: got %d, want 404", a.status)
	}
	if a := alice.post("/account/passkeys/options", url.Values{"_csrf": {f.Get("_csrf")}, "name": {"laptop"}}); a.status != http.StatusNotFound {
		t.Fatalf("adding a passkey: got %d, want 404", a.status)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("appended %d events", n-before)
	}
}
