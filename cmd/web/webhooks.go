package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"braid/internal/hooks"
)

// webhookFlags are serve's webhook settings (docs/webhooks.md).
type webhookFlags struct {
	allowPrivate                         *bool
	poll, retryBase, retryMax, disableAt *time.Duration
}

func addWebhookFlags(fs *flag.FlagSet) *webhookFlags {
	return &webhookFlags{
		allowPrivate: fs.Bool("webhook-allow-private", false, "let webhooks send to loopback and private addresses (default: refused when a webhook is made and again at each delivery)"),
		poll:         fs.Duration("webhook-poll", time.Second, "how often webhooks look for new events"),
		retryBase:    fs.Duration("webhook-retry", 10*time.Second, "the first wait after a failed webhook delivery; doubled after each failure"),
		retryMax:     fs.Duration("webhook-retry-max", time.Hour, "the longest wait between attempts at one webhook delivery"),
		disableAt:    fs.Duration("webhook-disable-after", 72*time.Hour, "turn a webhook off, telling the project's owners, when its deliveries have failed this long (default 3 days)"),
	}
}

// start runs the webhook deliverer until ctx ends; the returned func stops
// it and waits for the deliveries under way.
func (f *webhookFlags) start(ctx context.Context, a *app, log *slog.Logger) func() {
	d := &hooks.Deliverer{DB: a.db, Writer: a.writer, Types: a.types.hooks, Log: log, Clock: time.Now,
		Opt: hooks.Options{AllowPrivate: *f.allowPrivate, Poll: *f.poll, RetryBase: *f.retryBase, RetryMax: *f.retryMax, DisableAfter: *f.disableAt}}
	hctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(hctx) }()
	return func() { stop(); <-done }
}
