package templates

import (
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ago  time.Duration
		want string
	}{
		{-time.Minute, "just now"}, // a clock step backwards is not the future
		{10 * time.Second, "just now"},
		{time.Minute, "a minute ago"},
		{3 * time.Minute, "3 minutes ago"},
		{time.Hour, "1 hour ago"},
		{5*time.Hour + 59*time.Minute, "5 hours ago"},
		{49 * time.Hour, "2 days ago"},
		{40 * 24 * time.Hour, "on 14 Oct 2026"},
	} {
		s := now.Add(-c.ago).Format(time.RFC3339Nano)
		if got := Relative(s, now); got != c.want {
			t.Errorf("Relative(%s before): got %q, want %q", c.ago, got, c.want)
		}
	}
	if got := Relative("not a time", now); got != "not a time" {
		t.Errorf("Relative of a non-time: got %q, want it unchanged", got)
	}
}
