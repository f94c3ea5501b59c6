package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A real SMTP server (emersion/go-smtp) on 127.0.0.1:0 that wants PLAIN
// authentication and hands every message it accepts to a channel.
type smtpSink struct {
	user, pass string
	got        chan sunkMail
}

type sunkMail struct {
	from, to string
	msg      []byte
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: s}, nil }

type smtpSession struct {
	sink     *smtpSink
	authed   bool
	from, to string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.sink.user || pass != s.sink.pass {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err == nil {
		s.sink.got <- sunkMail{s.from, s.to, b}
	}
	return err
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func startSMTP(tb testing.TB, user, pass string) (*smtpSink, string) {
	tb.Helper()
	sink := &smtpSink{user: user, pass: pass, got: make(chan sunkMail, 10)}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // net/smtp sends PLAIN without TLS to 127.0.0.1 only
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return sink, ln.Addr().String()
}

// body decodes a digest's quoted-printable text.
func digestBody(tb testing.TB, raw []byte) (*mail.Message, string) {
	tb.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("the digest is not a mail message: %v\n%s", err, raw)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		tb.Fatalf("digest body: %v", err)
	}
	return m, string(b)
}

// With --smtp-url, a person who gave an address gets a digest of what they
// have not read, through a real SMTP server with authentication, with a
// link to /inbox that works; not twice for the same notifications; and
// the password is never in the log.
func TestDigestMailArrives(t *testing.T) {
	const pass = "s3cret-Pa55"
	sink, addr := startSMTP(t, "braid", pass)
	log := &syncBuffer{}
	s := startServerLogging(t, log, "--smtp-url", "smtp://braid:"+pass+"@"+addr, "--mail-from", "braid@example.org", "--mail-every", "1s")
	alice, bob := newBrowser(t, s.URL).from("127.0.0.40"), newBrowser(t, s.URL).from("127.0.0.41")
	alice.register("alice")
	bob.register("bob")
	ticket := alice.open("Printer on fire")
	if a := alice.command("/inbox", "/inbox/email", url.Values{"email": {"alice@example.org"}}); a.status != http.StatusSeeOther {
		t.Fatalf("set email: got %d\n%s", a.status, a.body)
	}
	if page := alice.get("/inbox").body; strings.Contains(page, "sends no mail") {
		t.Fatalf("the inbox says no mail is sent while it is")
	}
	bob.comment(ticket, "Smoke everywhere.")

	var got sunkMail
	select {
	case got = <-sink.got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no digest arrived in 15 s; log:\n%s", log.String())
	}
	if got.from != "braid@example.org" || got.to != "alice@example.org" {
		t.Fatalf("envelope: from %q to %q", got.from, got.to)
	}
	m, body := digestBody(t, got.msg)
	if subj := m.Header.Get("Subject"); subj != "Braid: 1 unread" {
		t.Fatalf("subject: got %q", subj)
	}
	if !strings.Contains(body, "bob commented on #1 Printer on fire") || !strings.Contains(body, s.URL+"/tickets/1#comment-1") {
		t.Fatalf("digest body lacks the notification and its link:\n%s", body)
	}
	link := s.URL + "/inbox"
	if !strings.Contains(body, "Your inbox: "+link+"\r\n") {
		t.Fatalf("digest body lacks the inbox link %s:\n%s", link, body)
	}
	// The link works: alice, signed in, follows it to her inbox.
	if a := alice.get(strings.TrimPrefix(link, s.URL)); a.status != http.StatusOK || !strings.Contains(a.body, "Bob commented on") {
		t.Fatalf("following the digest's link: got %d", a.status)
	}

	// The same unread notification is not mailed again.
	select {
	case again := <-sink.got:
		t.Fatalf("a second digest with nothing new:\n%s", again.msg)
	case <-time.After(2500 * time.Millisecond):
	}
	// Something new is, at the next round.
	bob.comment(ticket, "Still smoking.")
	select {
	case got = <-sink.got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no second digest; log:\n%s", log.String())
	}
	if _, body := digestBody(t, got.msg); !strings.Contains(body, "2 unread notifications") {
		t.Fatalf("second digest:\n%s", body)
	}
	if s.stop() != 0 {
		t.Fatal("server exit")
	}
	if l := log.String(); strings.Contains(l, pass) || !strings.Contains(l, "mail digest sent") {
		t.Fatalf("the log holds the password, or no line for the digest:\n%s", l)
	}
}

// Mail flags that do not go together stop the start (exit 2), without
// repeating the password.
func TestMailFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--smtp-url", "smtp://u:hunter22@127.0.0.1:1"},
		{"--mail-from", "braid@example.org"},
		{"--smtp-url", "http://u:hunter22@127.0.0.1:1", "--mail-from", "braid@example.org"},
		{"--smtp-url", "smtp://u:hunter22@127.0.0.1:1", "--mail-from", "not an address"},
		{"--smtp-url", "smtp://u:hunter22@127.0.0.1:1", "--mail-from", "braid@example.org", "--mail-every", "0s"},
		{"--smtp-url", "smtp://u:hunter22@[::1", "--mail-from", "braid@example.org"},
		{"--base-url", "braid.example.org"},
	} {
		var errb strings.Builder
		code := run(context.Background(), append([]string{"serve", "--db", filepath.Join(t.TempDir(), "b.db"), "--addr", "127.0.0.1:0"}, args...),
			func(string) string { return "" }, nil, io.Discard, &errb)
		if code != exitFailed || strings.Contains(errb.String(), "hunter22") || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2, a message and no password", args, code, errb.String())
		}
	}
}
