package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A comment's text changed by raw SQL in the comments table passes the
// braid check (the log is untouched) but not `web verify --deep`, which
// names the table, the row, the column and both values; /verify then says
// when the deep check ran and what it found.
func TestVerifyDeepNamesEditedComment(t *testing.T) {
	s := startServer(t)
	path := s.DB
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Deep check me")
	ada.comment(ticket, "the original words")
	if a := ada.get("/verify"); !strings.Contains(a.body, "No deep check has run yet") {
		t.Fatalf("/verify before any deep check:\n%.2000s", a.body)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	code, out, errb := runWeb(t, "verify", "--db", path, "--deep")
	if code != 0 || !strings.Contains(out, "rows equal to the ones rebuilt") {
		t.Fatalf("verify --deep on an honest database: exit %d\n%s%s", code, out, errb)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE comments SET body = 'words the author never wrote'`)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("forge the comment: %v (%d rows)", err, n)
	}
	db.Close()

	if code, out, errb := runWeb(t, "verify", "--db", path); code != 0 {
		t.Fatalf("plain verify should not see a projection edit: exit %d\n%s%s", code, out, errb)
	}
	code, out, errb = runWeb(t, "verify", "--db", path, "--deep")
	want := `table comments, row ticket_id=1, id=1, column body: live "words the author never wrote", rebuilt from the log "the original words"`
	if code != 1 || !strings.Contains(out+errb, want) {
		t.Fatalf("verify --deep after the forgery: exit %d, want 1 naming\n%s\ngot:\n%s%s", code, want, out, errb)
	}
	code, out, _ = runWeb(t, "verify", "--db", path, "--deep", "--json")
	var rep struct {
		Intact bool
		Deep   struct {
			OK   bool
			Diff struct{ Table, Key, Column, Live, Rebuilt string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Intact || rep.Deep.OK || rep.Deep.Diff.Column != "body" || rep.Deep.Diff.Table != "comments" {
		t.Fatalf("verify --deep --json: exit %d, %v, %+v\n%s", code, err, rep, out)
	}

	s = startServer(t, "--db", path)
	a := newBrowser(t, s.URL).get("/verify")
	if a.status != http.StatusOK || !strings.Contains(a.body, "differs from the log") || !strings.Contains(a.body, "words the author never wrote") {
		t.Fatalf("/verify after a failed deep check: %d\n%.3000s", a.status, a.body)
	}
	var st struct {
		DeepCheck *struct {
			OK      bool
			Problem string
		} `json:"deep_check"`
	}
	req, _ := http.NewRequest("GET", s.URL+"/verify", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.DeepCheck == nil || st.DeepCheck.OK || !strings.Contains(st.DeepCheck.Problem, "column body") {
		t.Fatalf("GET /verify as JSON: %v %+v", err, st.DeepCheck)
	}
}

// serve --deep-verify-every runs the deep check in the background and
// /verify (as JSON) reports the last one.
func TestServeDeepVerifyEvery(t *testing.T) {
	s := startServer(t, "--deep-verify-every", "50ms")
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", s.URL+"/verify", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			DeepCheck *struct {
				OK   bool
				Head int64
			} `json:"deep_check"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && st.DeepCheck != nil && st.DeepCheck.Head >= 1 {
			if !st.DeepCheck.OK {
				t.Fatalf("deep check of an honest log: %+v", st.DeepCheck)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deep check reported: %v %+v", err, st.DeepCheck)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := ada.get("/verify"); !strings.Contains(a.body, "everything the pages show matched") {
		t.Fatalf("/verify does not show the deep check:\n%.3000s", a.body)
	}
}
