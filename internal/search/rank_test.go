package search

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"braid/internal/events"
	"braid/internal/tickets"
	"braid/migrations"
)

// rankSite is a migrated database whose tickets (id: title, body,
// comments) are written straight into the read tables and the index.
func rankSite(t *testing.T, docs map[int64][3]string) *events.DB {
	t.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, filepath.Join(t.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for id, d := range docs {
		at := "2026-01-01T00:00:00Z"
		if _, err := db.Write.ExecContext(ctx, `INSERT INTO tickets (id, title, body, status, assignee, author, version, comment_count, opened_at, updated_at, project)
			VALUES (?, ?, ?, 'open', '', 'p_x', 1, 0, ?, ?, 'main')`, id, d[0], d[1], at, at); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Write.ExecContext(ctx, `INSERT INTO search_fts (rowid, title, body, comments, labels, cjk) VALUES (?, ?, ?, ?, '', '')`,
			id, d[0], d[1], d[2]); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// search lists the ids a search finds, in the order the list shows them.
func search(t *testing.T, db *events.DB, q string) []int64 {
	t.Helper()
	ctx := context.Background()
	f := tickets.Filter{Q: q, Status: "all", Page: 1}
	if err := (Searcher{}).Apply(ctx, db.Read, &f); err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	l, err := tickets.Query(ctx, db.Read, f)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	ids := []int64{}
	for _, r := range l.Tickets {
		ids = append(ids, r.ID)
	}
	return ids
}

// Rare terms are ranked by bm25 (the title above the body above a
// comment); terms found in commonAt tickets or more still choose the
// tickets, which then come with the term in the title first, then the
// newest; a prefix of four letters or more whose word is not there whole
// finds its words, newest first; a phrase of common words finds the
// phrase only.
func TestRankRareAndCommon(t *testing.T) {
	db := rankSite(t, map[int64][3]string{
		1: {"Printer jams", "the tray sticks", "tried again"},
		2: {"Tray is bent", "printer tray is bent", ""},
		3: {"Screen flickers", "since the update", "printer was off"},
		4: {"Login fails", "the printer page logs me out", ""},
		5: {"Paper tray", "nothing else", "a printer in the hall"},
		6: {"Exporting hangs", "the exporter waits forever", ""},
		7: {"Exported files", "are empty", ""},
	})
	// Rare (commonAt is 5000): bm25 ranks.
	if got, want := search(t, db, "printer"), []int64{1, 4, 2, 5, 3}; !reflect.DeepEqual(got[:1], want[:1]) || len(got) != 5 {
		t.Errorf("printer, ranked by bm25: got %v, want the title match #1 first of five", got)
	}
	if got := search(t, db, "flickers"); !reflect.DeepEqual(got, []int64{3}) {
		t.Errorf("flickers: got %v", got)
	}
	old := commonAt
	commonAt = 3
	defer func() { commonAt = old }()
	// "printer" is now common (five tickets): title first, then newest.
	if got, want := search(t, db, "printer"), []int64{1, 5, 4, 3, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("printer, common: got %v, want %v (the title first, then the newest)", got, want)
	}
	// "tray" (three tickets) is common too; with "bent" (one) the rare
	// word ranks and the common one only chooses.
	if got, want := search(t, db, "tray bent"), []int64{2}; !reflect.DeepEqual(got, want) {
		t.Errorf("tray bent: got %v, want %v", got, want)
	}
	if got, want := search(t, db, "printer OR flickers"), []int64{3, 1, 5, 4, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("printer OR flickers: got %v, want %v (the rare word's ticket first)", got, want)
	}
	if got, want := search(t, db, "printer -tray"), []int64{4, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("printer -tray: got %v, want %v", got, want)
	}
	// A prefix not found whole: every word it starts, newest first.
	if got, want := search(t, db, "expor"), []int64{7, 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("expor: got %v, want %v", got, want)
	}
	// Two and three letters are prefixes (from the index's prefix lists),
	// ranked by bm25 when rare: #6 has the prefix twice.
	if got, want := search(t, db, "ex"), []int64{6, 7}; !reflect.DeepEqual(got, want) {
		t.Errorf("ex: got %v, want %v", got, want)
	}
	// A common word typed whole is the word: "printer" does not find
	// "printers"; a phrase of common words is still the phrase.
	if got, want := search(t, db, `"the printer"`), []int64{4}; !reflect.DeepEqual(got, want) {
		t.Errorf(`"the printer": got %v, want %v`, got, want)
	}
	// A single letter is a word, never the start of every word.
	if got := search(t, db, "a"); !reflect.DeepEqual(got, []int64{5}) {
		t.Errorf("a: got %v, want [5]", got)
	}
}
