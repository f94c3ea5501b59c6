package main

import (
	"strings"
	"testing"
)

// TestNumericFlagsAreChecked: a number out of range is a usage mistake:
// exit 2 and one line on stderr naming the flag, before anything runs.
func TestNumericFlagsAreChecked(t *testing.T) {
	path, _ := seedLog(t, 8)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--batch", "0"}, "--batch 0: want a number from 1 to 1000000"},
		{[]string{"replay", "--batch", "-5"}, "--batch -5: want a number from 1 to 1000000"},
		{[]string{"replay", "--batch", "1000001"}, "--batch 1000001: want a number from 1 to 1000000"},
		{[]string{"replay", "--batch", "many"}, "invalid value \"many\" for flag -batch"},
		{[]string{"serve", "--anchor-every", "-1h", "--addr", "127.0.0.1:0"}, "--anchor-every -1h0m0s: want a positive interval"},
		{[]string{"anchor", "--witness", "evm", "--chain-id", "-1"}, "invalid value \"-1\" for flag -chain-id"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			before := snapshot(t, path)
			code, out, errb := runWeb(t, append(c.args, "--db", path)...)
			if code != 2 || !strings.Contains(errb, c.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errb, c.want)
			}
			if snapshot(t, path) != before {
				t.Fatalf("the database changed")
			}
		})
	}
	if code, out, errb := runWeb(t, "replay", "--batch", "1", "--db", path); code != 0 {
		t.Fatalf("replay --batch 1: exit %d, %q %q; want 0", code, out, errb)
	}
}
