package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestErasureDeletesFiles: erasing a comment erases the files attached to
// it: off the ticket, out of the blobs table and out of the database
// file's bytes, unless a live attachment still names the same bytes; the
// braid still verifies, with the erased payloads counted.
func TestErasureDeletesFiles(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada") // site admin
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	ticket := ada.open("Printer jam")
	shot := pngBytes(t, 37, 29)
	if a := bob.attachTo(ticket, "my screen", upfile{"files", "bob's screen.png", shot}); a.status != http.StatusSeeOther {
		t.Fatalf("bob attaches: %d\n%.500s", a.status, a.body)
	}
	if a := ada.attachTo(ticket, "same here", upfile{"files", "ada.png", shot}); a.status != http.StatusSeeOther {
		t.Fatalf("ada attaches: %d\n%.500s", a.status, a.body)
	}
	sha := shaOf(shot)
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	erase := func(comment string) {
		t.Helper()
		if code, out, errb := runWeb(t, "erase", "--db", s.DB, "--comment", comment, "--reason", "a screenshot with a password", "--as", "ada"); code != 0 {
			t.Fatalf("erase %s: exit %d\n%s%s", comment, code, out, errb)
		}
	}
	erase("1/1") // bob's: ada's attachment still names the bytes
	if n := countRows(t, s.DB, "blobs"); n != 1 {
		t.Fatalf("after erasing bob's comment: %d blobs, want 1 (ada's attachment names the same file)", n)
	}
	if n := countRows(t, s.DB, "attachments"); n != 1 {
		t.Fatalf("after erasing bob's comment: %d attachments shown, want ada's 1", n)
	}
	erase("1/2")
	if n := countRows(t, s.DB, "blobs"); n != 0 {
		t.Fatalf("after erasing both: %d blobs, want 0", n)
	}
	if n := countRows(t, s.DB, "attachments"); n != 0 {
		t.Fatalf("after erasing both: %d attachments shown", n)
	}
	code, out, errb := runWeb(t, "verify", "--db", s.DB)
	if code != 0 || !strings.Contains(out, "payloads erased") {
		t.Fatalf("verify after erasing files: exit %d\n%s%s", code, out, errb)
	}
	// The file's bytes are gone from the database and its WAL.
	chunk := shot[len(shot)/2 : len(shot)/2+24]
	for _, f := range []string{s.DB, s.DB + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(b, chunk) {
			t.Errorf("%s still holds the erased file's bytes", f)
		}
	}
	// Replay rebuilds the same: no attachment shown.
	if code, out, errb := runWeb(t, "replay", "--db", s.DB); code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errb)
	}
	if n := countRows(t, s.DB, "attachments"); n != 0 {
		t.Fatalf("after replay: %d attachments shown", n)
	}
	_ = sha
}
