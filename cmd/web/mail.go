package main

import (
	"cmp"
	"context"
	"flag"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"braid/internal/notify"
)

// mailFlags are serve's flags for the email digest.
type mailFlags struct {
	smtpURL, from, baseURL *string
	every                  *time.Duration
}

func addMailFlags(fs *flag.FlagSet, getenv func(string) string) *mailFlags {
	return &mailFlags{
		smtpURL: fs.String("smtp-url", getenv("BRAID_SMTP_URL"), "send email digests through this server: smtp://user:pass@host:port (STARTTLS when offered) or smtps://… (env BRAID_SMTP_URL; default none: inbox only)"),
		from:    fs.String("mail-from", getenv("BRAID_MAIL_FROM"), "the From address of digests (env BRAID_MAIL_FROM)"),
		every:   fs.Duration("mail-every", 10*time.Minute, "mail each person a digest of their unread notifications at most this often"),
		baseURL: fs.String("base-url", getenv("BRAID_BASE_URL"), "the site's address as people reach it, for links in mail and for passkeys, e.g. https://braid.example.org (env BRAID_BASE_URL; default: the address served on, as http://localhost:PORT on a loopback address)"),
	}
}

// mailer checks the mail flags: nil when no mail is configured.
func (m *mailFlags) mailer() (*notify.SMTP, error) {
	if *m.baseURL != "" {
		u, err := url.Parse(*m.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fail(exitFailed, "--base-url %q: want the site's address, such as https://braid.example.org", *m.baseURL)
		}
	}
	if *m.smtpURL == "" {
		if *m.from != "" {
			return nil, fail(exitFailed, "--mail-from needs --smtp-url (env BRAID_SMTP_URL)")
		}
		return nil, nil
	}
	if *m.from == "" {
		return nil, fail(exitFailed, "--smtp-url needs --mail-from ADDR (env BRAID_MAIL_FROM)")
	}
	if *m.every < time.Second {
		return nil, fail(exitFailed, "--mail-every %s: want at least 1s, e.g. 10m", *m.every)
	}
	s, err := notify.ParseSMTP(*m.smtpURL, *m.from)
	if err != nil {
		return nil, fail(exitFailed, "--smtp-url: %v", err) // never the URL itself: it may hold a password
	}
	return s, nil
}

// start runs the digest job until ctx ends; the returned func stops it
// and waits.
func (m *mailFlags) start(ctx context.Context, s *notify.SMTP, a *app, served string, log *slog.Logger) func() {
	base := cmp.Or(strings.TrimRight(*m.baseURL, "/"), served)
	if *m.baseURL == "" {
		log.Warn("mail links point at the address served on; set --base-url to the address people reach", slog.String("base_url", base))
	}
	d := &notify.Digest{DB: a.db.Aux, Read: a.db.Read, Mail: s, From: s.From, BaseURL: base, Every: *m.every, Clock: time.Now, Log: log}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(jctx) }()
	log.Info("mailing digests", slog.String("smtp", s.String()), slog.String("from", s.From), slog.Duration("every", *m.every))
	return func() { stop(); <-done }
}
