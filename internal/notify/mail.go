package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SMTP is where digests are sent from: parsed from --smtp-url
// smtp://user:pass@host:port (STARTTLS when the server offers it) or
// smtps://… (TLS from the first byte). Its String never shows the password.
type SMTP struct {
	Host, Port string
	User, Pass string
	TLS        bool // smtps: implicit TLS
	From       string
}

// ParseSMTP reads an SMTP URL and the From address.
func ParseSMTP(raw, from string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error repeats the URL, password and all: say less.
		return nil, fmt.Errorf("the SMTP URL is not a URL such as smtp://user:pass@mail.example.org:587")
	}
	s := &SMTP{Host: u.Hostname(), Port: u.Port()}
	switch u.Scheme {
	case "smtp":
		if s.Port == "" {
			s.Port = "587"
		}
	case "smtps":
		s.TLS = true
		if s.Port == "" {
			s.Port = "465"
		}
	default:
		return nil, fmt.Errorf("the SMTP URL must start with smtp:// or smtps://, not %q", u.Scheme+"://")
	}
	if s.Host == "" {
		return nil, fmt.Errorf("the SMTP URL names no host")
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Pass, _ = u.User.Password()
	}
	a, err := mail.ParseAddress(from)
	if err != nil || a.Address == "" {
		return nil, fmt.Errorf("--mail-from %q is not an email address", from)
	}
	s.From = a.Address
	return s, nil
}

// String describes the server without its password, for logs.
func (s *SMTP) String() string {
	scheme := "smtp"
	if s.TLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(s.Host, s.Port)}
	if s.User != "" {
		u.User = url.User(s.User)
	}
	return u.String()
}

// Send delivers one message to one recipient: it dials, says EHLO, turns
// on TLS when offered (or from the start for smtps), authenticates when a
// user is given, and sends.
func (s *SMTP) Send(ctx context.Context, to string, msg []byte) error {
	addr := net.JoinHostPort(s.Host, s.Port)
	d := &net.Dialer{Timeout: 20 * time.Second}
	tc := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	var err error
	if s.TLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	deadline := time.Now().Add(time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.TLS {
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("smtp STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		// net/smtp's PlainAuth refuses to send the password without TLS,
		// except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Pass, s.Host)); err != nil {
			return fmt.Errorf("smtp AUTH as %s: %w", s.User, err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	return c.Quit()
}

// Sender sends one message; *SMTP is one.
type Sender interface {
	Send(ctx context.Context, to string, msg []byte) error
}

// Digest is the job that mails each person with an address a digest of
// their unread notifications, at most once per Every, and only when
// something arrived since the last one. When each person was last mailed,
// and up to which position, is kept in mail_digests, outside the log.
type Digest struct {
	DB      *sql.DB // the auxiliary connection: writes mail_digests
	Read    *sql.DB
	Mail    Sender
	From    string
	BaseURL string // the site as people reach it, e.g. https://braid.example.org
	Every   time.Duration
	Clock   func() time.Time
	Log     *slog.Logger
}

// Run sends digests every d.Every until ctx ends.
func (d *Digest) Run(ctx context.Context) {
	t := time.NewTicker(d.Every)
	defer t.Stop()
	for {
		if err := d.Once(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("mail digests", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type due struct {
	user, email string
	since       int64
}

// Once sends every digest that is due now. A failure to send to one
// person is logged and does not stop the others; they are tried again at
// the next round.
func (d *Digest) Once(ctx context.Context) error {
	now := d.Clock()
	rows, err := d.Read.QueryContext(ctx, `SELECT e.user_id, e.email, COALESCE(m.up_to, 0), COALESCE(m.sent_at, '')
		FROM notify_emails e LEFT JOIN mail_digests m ON m.user_id = e.user_id
		WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = e.user_id AND n.read = 0 AND n.position > COALESCE(m.up_to, 0))
		ORDER BY e.user_id`)
	if err != nil {
		return fmt.Errorf("find digests due: %w", err)
	}
	var list []due
	for rows.Next() {
		var x due
		var sent string
		if err := rows.Scan(&x.user, &x.email, &x.since, &sent); err != nil {
			rows.Close()
			return err
		}
		if t, err := time.Parse(time.RFC3339Nano, sent); err == nil && now.Sub(t) < d.Every {
			continue // mailed less than Every ago
		}
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, x := range list {
		if err := d.send(ctx, x, now); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.Log.Error("mail digest", slog.String("user", x.user), slog.Any("err", err))
		}
	}
	return nil
}

func (d *Digest) send(ctx context.Context, x due, now time.Time) error {
	items, _, err := Inbox(ctx, d.Read, x.user, 1000, 0)
	if err != nil {
		return err
	}
	var unread []Item
	var upTo int64
	for _, it := range items {
		if !it.Read {
			unread = append(unread, it)
			upTo = max(upTo, it.Position)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	msg := d.message(x, unread, now)
	if err := d.Mail.Send(ctx, x.email, msg); err != nil {
		return err
	}
	_, err = d.DB.ExecContext(ctx, `INSERT INTO mail_digests (user_id, up_to, sent_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET up_to = excluded.up_to, sent_at = excluded.sent_at`,
		x.user, upTo, now.UTC().Format(time.RFC3339Nano))
	if err == nil {
		d.Log.Info("mail digest sent", slog.String("user", x.user), slog.Int("notifications", len(unread)))
	}
	return err
}

// message is the digest as an RFC 5322 message, plain text, UTF-8,
// quoted-printable. Nothing a person typed goes into a header.
func (d *Digest) message(x due, items []Item, now time.Time) []byte {
	base := strings.TrimRight(d.BaseURL, "/")
	var body bytes.Buffer
	n := strconv.Itoa(len(items))
	if len(items) == 1 {
		fmt.Fprintf(&body, "You have 1 unread notification on Braid.\n\n")
	} else {
		fmt.Fprintf(&body, "You have %s unread notifications on Braid.\n\n", n)
	}
	for i, it := range items {
		if i == 50 {
			fmt.Fprintf(&body, "…and %d more.\n", len(items)-50)
			break
		}
		fmt.Fprintf(&body, "- %s\n  %s%s\n", it.Text, base, it.Link)
	}
	fmt.Fprintf(&body, "\nYour inbox: %s/inbox\n\nYou get this because you asked for digests at %s on your inbox page;\nleave the address empty there to stop them.\n", base, x.email)

	var m bytes.Buffer
	var id [12]byte
	rand.Read(id[:])
	host := "braid"
	if u, err := url.Parse(base); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	fmt.Fprintf(&m, "From: Braid <%s>\r\n", d.From)
	fmt.Fprintf(&m, "To: <%s>\r\n", x.email)
	fmt.Fprintf(&m, "Subject: Braid: %s unread\r\n", n)
	fmt.Fprintf(&m, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&m, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id[:]), host)
	m.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nAuto-Submitted: auto-generated\r\n\r\n")
	qp := quotedprintable.NewWriter(&m)
	qp.Write(bytes.ReplaceAll(body.Bytes(), []byte("\n"), []byte("\r\n")))
	qp.Close()
	return m.Bytes()
}
