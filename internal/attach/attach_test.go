package attach

import (
	"strings"
	"testing"

	"braid/internal/errs"
)

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"shot.png", true},
		{"スクリーンショット 2026-11-23.png", true},
		{`"><img src=x onerror=alert(1)>.png`, true}, // display text: escaped wherever it is shown
		{`"><script>alert(1)</script>.png`, false},   // the slash
		{strings.Repeat("a", MaxName), true},
		{strings.Repeat("a", MaxName+1), false},
		{"", false},
		{"   ", false},
		{"a/b.png", false},
		{`a\b.png`, false},
		{"..", false},
		{"bell\a.png", false},
		{"two\nlines.png", false},
		{"c1\u0085.png", false},
		{"bad\xffutf8.png", false},
	} {
		err := CheckName("files", c.name)
		if (err == nil) != c.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && errs.Fields(err)["files"] == "" {
			t.Errorf("CheckName(%q): no message for the field: %v", c.name, err)
		}
	}
}

func TestSniffAllowList(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for _, c := range []struct {
		data, want string
	}{
		{string(png), "image/png"},
		{"%PDF-1.7\n", "application/pdf"},
		{"plain words\n", "text/plain"},
		{"PK\x03\x04zip", "application/zip"},
		{"<html><script>alert(1)</script>", ""},
		{`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`, ""},
		{"  \n<SVG onload=alert(1)>", ""},
		{`<?xml version="1.0"?><x/>`, ""},
		{"GIF89a" + "<script>", "image/gif"}, // a GIF is a GIF: served as image/gif with nosniff
	} {
		got, err := Sniff("files", "f", []byte(c.data), DefaultTypes)
		if c.want == "" {
			if err == nil {
				t.Errorf("Sniff(%.20q) = %q, want refused", c.data, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Sniff(%.20q) = %q, %v; want %q", c.data, got, err, c.want)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{1: "1 byte", 12: "12 bytes", 2048: "2 KB", 10 << 20: "10 MB", 1536 << 10: "1.5 MB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
