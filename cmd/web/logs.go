package main

import (
	"fmt"
	"log/slog"
)

// logFormat is the value of --log-format (env BRAID_LOG_FORMAT), which
// every command takes: text (the default) or json, one object per line
// with time, level and msg, for log shippers.
type logFormat struct{ v string }

func (f *logFormat) String() string {
	if f == nil || f.v == "" {
		return "text"
	}
	return f.v
}

func (f *logFormat) Set(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("%q: use text or json", s)
	}
	f.v = s
	return nil
}

// logger returns the command's logger on stderr, in the chosen format,
// showing records at level and above.
func (e env) logger(level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch f := e.logFormat.String(); f {
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	default:
		return nil, fail(exitFailed, "BRAID_LOG_FORMAT %q: use text or json", f)
	}
}
