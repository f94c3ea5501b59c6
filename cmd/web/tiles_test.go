package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
	"braid/internal/tlog"
	"braid/migrations"
)

type tileNote struct {
	N int `json:"n"`
}

// tileLog is a log with a tree, a key and the tile and proof routes on a
// test server, grown and signed by the test.
type tileLog struct {
	db     *events.DB
	w      *events.Writer
	tree   *tlog.Tree
	signer *tlog.Signer
	typ    events.Type[tileNote]
	url    string
	n      int
	batch  int // events per command, default 100
}

func newTileLog(tb testing.TB) *tileLog {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db, err := events.Open(ctx, filepath.Join(dir, "braid.db"), migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	reg := events.NewRegistry()
	l := &tileLog{db: db, tree: tlog.New(), typ: events.Define[tileNote](reg, "note_added", 1)}
	l.w, err = events.NewWriter(ctx, db, reg, events.WriterOptions{Hooks: []events.Hook{l.tree}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.w.Close() })
	k, _, err := tlog.LoadOrCreateKey(filepath.Join(dir, "key"), "braid.local/tiles")
	if err != nil {
		tb.Fatal(err)
	}
	l.signer = &tlog.Signer{Tree: l.tree, Key: k, Store: l.w.Exclusive}
	e := echo.New()
	e.GET("/checkpoint", checkpoint(db))
	e.GET("/tile/*", tiles(db, false))
	e.GET("/tile/entries/*", tiles(db, true))
	e.GET("/proof/inclusion", inclusionProof(db))
	e.GET("/proof/consistency", consistencyProof(db))
	s := httptest.NewServer(e)
	tb.Cleanup(s.Close)
	l.url = s.URL
	return l
}

// grow appends events up to size, in commands of up to 100, and signs a
// checkpoint of the tree.
func (l *tileLog) grow(tb testing.TB, size int) {
	tb.Helper()
	ctx := context.Background()
	for l.n < size {
		k := min(cmp.Or(l.batch, 100), size-l.n)
		_, err := l.w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			ch := events.Change{AggregateType: "note", AggregateID: events.NewID()[:8], Expect: events.Any}
			for i := range k {
				ch.Events = append(ch.Events, l.typ.New(tileNote{N: l.n + i}))
			}
			return []events.Change{ch}, nil
		}})
		if err != nil {
			tb.Fatal(err)
		}
		l.n += k
	}
	if err := l.signer.SignAndStore(ctx, l.tree.Head()); err != nil {
		tb.Fatal(err)
	}
}

func httpGet(tb testing.TB, url string) (int, http.Header, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// c2spPath is the C2SP tlog-tiles path of an x/mod tile, written here from
// the spec without Braid's code.
func c2spPath(t xtlog.Tile) string {
	n := fmt.Sprintf("%d", t.N)
	for len(n)%3 != 0 {
		n = "0" + n
	}
	var p string
	for i := 0; i < len(n)-3; i += 3 {
		p += "x" + n[i:i+3] + "/"
	}
	p += n[len(n)-3:]
	if t.W < 1<<t.H {
		p += fmt.Sprintf(".p/%d", t.W)
	}
	return fmt.Sprintf("tile/%d/%s", t.L, p)
}

// httpTiles is x/mod's TileReader over the server's C2SP tiles.
type httpTiles struct {
	tb      testing.TB
	url     string
	fetched map[string]http.Header
}

func (r *httpTiles) Height() int { return tlog.TileHeight }

func (r *httpTiles) ReadTiles(ts []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		code, hdr, b := httpGet(r.tb, r.url+"/"+c2spPath(t))
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", c2spPath(t), code, b)
		}
		r.fetched[c2spPath(t)] = hdr
		out[i] = b
	}
	return out, nil
}

func (r *httpTiles) SaveTiles([]xtlog.Tile, [][]byte) {}

// signedTree reads /checkpoint and opens it with the log's key.
func (l *tileLog) signedTree(tb testing.TB) xtlog.Tree {
	tb.Helper()
	code, _, body := httpGet(tb, l.url+"/checkpoint")
	if code != http.StatusOK {
		tb.Fatalf("GET /checkpoint: %d %s", code, body)
	}
	v, err := note.NewVerifier(l.signer.Key.VKey)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := note.Open(body, note.VerifierList(v))
	if err != nil {
		tb.Fatal(err)
	}
	_, h, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		tb.Fatal(err)
	}
	return xtlog.Tree{N: h.Size, Hash: h.Root}
}

// TestTilesVerifyWithXMod: x/mod's TileHashReader, reading the server's
// C2SP tiles, verifies them against the signed checkpoint at several
// sizes; every entry of the entry bundles is the export line of an event
// whose braid hash is the leaf; full tiles are immutable, partial ones not.
func TestTilesVerifyWithXMod(t *testing.T) {
	l := newTileLog(t)
	for _, size := range []int{1, 255, 256, 257, 700} {
		l.grow(t, size)
		tree := l.signedTree(t)
		if tree.N != int64(size) {
			t.Fatalf("checkpoint of size %d, want %d", tree.N, size)
		}
		tr := &httpTiles{tb: t, url: l.url, fetched: map[string]http.Header{}}
		thr := xtlog.TileHashReader(tree, tr)
		root, err := xtlog.TreeHash(tree.N, thr)
		if err != nil || root != tree.Hash {
			t.Fatalf("size %d: TreeHash over the tiles %v, %v; checkpoint %v", size, root, err, tree.Hash)
		}
		// Every leaf through the tiles, and a proof for some.
		idx := make([]int64, size)
		for i := range idx {
			idx[i] = xtlog.StoredHashIndex(0, int64(i))
		}
		leaves, err := thr.ReadHashes(idx)
		if err != nil {
			t.Fatalf("size %d: leaves through the tiles: %v", size, err)
		}
		for _, i := range []int64{0, int64(size) / 2, int64(size) - 1} {
			p, err := xtlog.ProveRecord(tree.N, i, thr)
			if err == nil {
				err = xtlog.CheckRecord(p, tree.N, tree.Hash, i, leaves[i])
			}
			if err != nil {
				t.Fatalf("size %d: record %d through the tiles: %v", size, i, err)
			}
		}
		for path, hdr := range tr.fetched {
			cc, full := hdr.Get("Cache-Control"), !strings.Contains(path, ".p/")
			if full != strings.Contains(cc, "immutable") || hdr.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("%s: Cache-Control %q, Content-Type %q", path, cc, hdr.Get("Content-Type"))
			}
		}

		// The entry bundles: each entry an export line whose braid hash
		// makes the leaf.
		var at int64
		for n := int64(0); n*256 < int64(size); n++ {
			w := min(256, int64(size)-n*256)
			path := c2spPath(xtlog.Tile{H: 8, N: n, W: int(w)})
			path = strings.Replace(path, "tile/0/", "tile/entries/", 1)
			code, hdr, b := httpGet(t, l.url+"/"+path)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, code, b)
			}
			if cc := hdr.Get("Cache-Control"); w == 256 != strings.Contains(cc, "immutable") || !strings.HasPrefix(cc, "private") {
				t.Errorf("%s: Cache-Control %q, want private, immutable when full", path, cc)
			}
			for len(b) > 0 {
				if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
					t.Fatalf("%s: truncated entry after %d", path, at)
				}
				line := b[2 : 2+binary.BigEndian.Uint16(b)]
				b = b[2+len(line):]
				err := events.ReadExport(bytes.NewReader(append(bytes.Clone(line), '\n')), func(_ int64, e *events.Event) error {
					if e.Position != at+1 || e.ComputeHash() != e.Hash {
						return fmt.Errorf("entry %d: position %d, braid hash recomputes: %v", at, e.Position, e.ComputeHash() == e.Hash)
					}
					if xtlog.RecordHash(e.Hash[:]) != leaves[at] {
						return fmt.Errorf("entry %d: SHA-256(0x00 || braid hash) is not the leaf", at)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("size %d, %s: %v", size, path, err)
				}
				at++
			}
		}
		if at != int64(size) {
			t.Fatalf("size %d: the bundles hold %d entries", size, at)
		}
	}
}

func decodeHash(tb testing.TB, s string) xtlog.Hash {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		tb.Fatalf("hash %q: %v", s, err)
	}
	return xtlog.Hash(b)
}

// TestProofsCheckWithXMod: inclusion and consistency proofs over HTTP
// check with x/mod's CheckRecord and CheckTree against the signed roots;
// bad and past-the-tree parameters are refused, and bad tile paths are
// 404s.
func TestProofsCheckWithXMod(t *testing.T) {
	l := newTileLog(t)
	l.grow(t, 300)
	old := l.signedTree(t)
	l.grow(t, 700)
	tree := l.signedTree(t)

	type inclusion struct {
		Position, Index, Size int64
		Leaf, Root            string
		Proof                 []string
	}
	for _, pos := range []int64{1, 2, 256, 257, 300, 699, 700} {
		for _, size := range []int64{300, 700} {
			if pos > size {
				continue
			}
			code, _, body := httpGet(t, fmt.Sprintf("%s/proof/inclusion?position=%d&size=%d", l.url, pos, size))
			var p inclusion
			if code != http.StatusOK || json.Unmarshal(body, &p) != nil {
				t.Fatalf("inclusion %d in %d: %d %s", pos, size, code, body)
			}
			root := map[int64]xtlog.Hash{300: old.Hash, 700: tree.Hash}[size]
			if p.Position != pos || p.Index != pos-1 || p.Size != size || decodeHash(t, p.Root) != root {
				t.Fatalf("inclusion %d in %d: %s", pos, size, body)
			}
			var proof xtlog.RecordProof
			for _, h := range p.Proof {
				proof = append(proof, decodeHash(t, h))
			}
			var braid []byte
			if err := l.db.Read.QueryRow(`SELECT hash FROM events WHERE position = ?`, pos).Scan(&braid); err != nil {
				t.Fatal(err)
			}
			leaf := xtlog.RecordHash(braid)
			if decodeHash(t, p.Leaf) != leaf {
				t.Fatalf("inclusion %d: leaf %s is not SHA-256(0x00 || braid hash)", pos, p.Leaf)
			}
			if err := xtlog.CheckRecord(proof, size, root, pos-1, leaf); err != nil {
				t.Fatalf("inclusion %d in %d: %v", pos, size, err)
			}
			if pos > 1 && xtlog.CheckRecord(proof, size, root, pos-2, leaf) == nil {
				t.Fatalf("inclusion %d in %d also checks for another index", pos, size)
			}
		}
	}
	// size defaults to the latest checkpoint's.
	if code, _, body := httpGet(t, l.url+"/proof/inclusion?position=5"); code != http.StatusOK || !strings.Contains(string(body), `"size":700`) {
		t.Fatalf("inclusion without size: %d %s", code, body)
	}

	type consistency struct {
		Old, Size int64
		OldRoot   string `json:"old_root"`
		Root      string
		Proof     []string
	}
	for _, c := range [][2]int64{{300, 700}, {1, 700}, {256, 700}, {700, 700}, {1, 300}, {255, 257}} {
		code, _, body := httpGet(t, fmt.Sprintf("%s/proof/consistency?old=%d&size=%d", l.url, c[0], c[1]))
		var p consistency
		if code != http.StatusOK || json.Unmarshal(body, &p) != nil {
			t.Fatalf("consistency %v: %d %s", c, code, body)
		}
		var proof xtlog.TreeProof
		for _, h := range p.Proof {
			proof = append(proof, decodeHash(t, h))
		}
		if err := xtlog.CheckTree(proof, c[1], decodeHash(t, p.Root), c[0], decodeHash(t, p.OldRoot)); err != nil {
			t.Fatalf("consistency %v: %v", c, err)
		}
		if c == [2]int64{300, 700} && (decodeHash(t, p.OldRoot) != old.Hash || decodeHash(t, p.Root) != tree.Hash) {
			t.Fatalf("consistency 300→700: roots are not the signed ones: %s", body)
		}
	}

	for path, want := range map[string]int{
		"/proof/inclusion":                               422,
		"/proof/inclusion?position=0":                    422,
		"/proof/inclusion?position=x":                    422,
		"/proof/inclusion?position=-1":                   422,
		"/proof/inclusion?position=701":                  422,
		"/proof/inclusion?position=5&size=4":             422,
		"/proof/inclusion?position=5&size=0":             422,
		"/proof/inclusion?position=5&size=abc":           422,
		"/proof/inclusion?position=5&size=701":           404,
		"/proof/inclusion?position=1&size=1e3":           422,
		"/proof/consistency?old=0&size=5":                422,
		"/proof/consistency?old=6&size=5":                422,
		"/proof/consistency?old=5&size=701":              404,
		"/proof/consistency?size=5":                      422,
		"/proof/consistency?old=99999999999999999999":    422,
		"/tile/0/002":                                    404, // the third full tile: not yet
		"/tile/0/002.p/189":                              404, // wider than the tree
		"/tile/0/002.p/188":                              200,
		"/tile/0/001":                                    200,
		"/tile/1/000.p/2":                                200,
		"/tile/1/000.p/3":                                404,
		"/tile/2/000.p/1":                                404,
		"/tile/0/02":                                     404,
		"/tile/0/0001":                                   404,
		"/tile/0/x000/001":                               404,
		"/tile/0/001.p/0":                                404,
		"/tile/0/001.p/256":                              404,
		"/tile/0/000.p/01":                               404,
		"/tile/00/000":                                   404,
		"/tile/64/000":                                   404,
		"/tile/63/000":                                   404,
		"/tile/0/x999/x999/x999/x999/x999/x999/x999/999": 404,
		"/tile/8/x999/x999/x999/x999/x999/x999/999":      404,
		"/tile/entries/002.p/188":                        200,
		"/tile/entries/002":                              404,
		"/tile/entries/abc":                              404,
		"/tile/":                                         404,
		"/tile/0/":                                       404,
		"/tile/entries/":                                 404,
	} {
		if code, _, body := httpGet(t, l.url+path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}

// TestTilesServed: through the real server, signed out, the tiles and
// proofs of the checkpoint are served with no session cookie.
func TestTilesServed(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("Engine stalls")
	n := int64(countEvents(t, s.DB))
	waitCheckpoint(t, s.URL, n)
	for _, path := range []string{
		fmt.Sprintf("/tile/0/000.p/%d", n),
		fmt.Sprintf("/proof/inclusion?position=1&size=%d", n),
		fmt.Sprintf("/proof/consistency?old=1&size=%d", n),
	} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) > 0 {
			t.Fatalf("GET %s: %d, cookies %v: %s", path, resp.StatusCode, resp.Cookies(), body)
		}
		if strings.HasPrefix(path, "/tile/0/") && len(body) != 32*int(n) {
			t.Fatalf("GET %s: %d bytes", path, len(body))
		}
	}
	if code, _, _ := httpGet(t, s.URL+"/tile/0/000"); code != http.StatusNotFound {
		t.Fatalf("a full tile of a small log: %d", code)
	}
	// The entry bundles hold every event (email addresses too): like the
	// events themselves, they are for signed-in people only.
	entries := fmt.Sprintf("/tile/entries/000.p/%d", n)
	if a := newBrowser(t, s.URL).get(entries); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/login") {
		t.Fatalf("GET %s signed out: %d to %q, want 303 to /login", entries, a.status, a.location)
	}
	if a := b.get(entries); a.status != http.StatusOK || !strings.Contains(a.body, `"event_type":"user_registered"`) {
		t.Fatalf("GET %s signed in: %d %q", entries, a.status, a.body)
	}
	if a := b.get("/tile/entries/000"); a.status != http.StatusNotFound {
		t.Fatalf("a full entry bundle of a small log: %d", a.status)
	}
}

// BenchmarkInclusionProofHTTP: GET /proof/inclusion for random positions
// in a log of 100k events (BRAID_BENCH_EVENTS=1000000 for 1M), over HTTP
// on loopback; reports the p50 and p99 of the request's latency. Run with
// go test -run '^$' -bench BenchmarkInclusionProofHTTP -benchtime 2000x ./cmd/web
func BenchmarkInclusionProofHTTP(b *testing.B) {
	size := int64(100_000)
	if n, err := strconv.ParseInt(os.Getenv("BRAID_BENCH_EVENTS"), 10, 64); err == nil && n > 0 {
		size = n
	}
	l := newTileLog(b)
	l.batch = 1000
	l.grow(b, int(size))
	tr := &http.Transport{MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(pos int64) time.Duration {
		t0 := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/proof/inclusion?position=%d&size=%d", l.url, pos, size))
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"proof":[`)) {
			b.Fatalf("position %d: %d %s %v", pos, resp.StatusCode, body, err)
		}
		return d
	}
	for range 20 {
		get(rand.Int64N(size) + 1)
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		ds = append(ds, get(rand.Int64N(size)+1))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
}

// TestTicketProofBundle: a signed-in person downloads a ticket's proof
// bundle; `web verify --bundle` accepts it with the log's key and refuses,
// naming the problem, a tampered event, a wrong proof hash, another key's
// checkpoint and a dropped event.
func TestTicketProofBundle(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("Card reader jams")
	ticket := b.open("Engine stalls")
	for _, body := range []string{"first", "second"} {
		if a := b.post(ticket+"/comments", b.form(ticket, ticket+"/comments", url.Values{"body": {body}})); a.status != http.StatusSeeOther {
			t.Fatalf("comment: %d %s", a.status, a.body)
		}
	}
	b.open("Another one")
	n := int64(countEvents(t, s.DB))
	waitCheckpoint(t, s.URL, n)
	_, out, _ := runWeb(t, "key", "--db", s.DB)
	vkey := strings.TrimPrefix(strings.Split(out, "\n")[0], "vkey ")

	a := b.get(ticket + "/proof")
	if a.status != http.StatusOK || !strings.Contains(a.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET %s/proof: %d %v %s", ticket, a.status, a.header, a.body)
	}
	var bundle tlog.Bundle
	if err := json.Unmarshal([]byte(a.body), &bundle); err != nil || len(bundle.Events) < 3 || bundle.VKey != vkey {
		t.Fatalf("bundle: %v, %d events, vkey %q\n%s", err, len(bundle.Events), bundle.VKey, a.body)
	}
	dir := t.TempDir()
	write := func(name string, b tlog.Bundle) string {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", bundle)
	code, out, errb := runWeb(t, "verify", "--bundle", good, "--vkey", vkey)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("intact: %d events", len(bundle.Events))) {
		t.Fatalf("verify --bundle: exit %d\n%s%s", code, out, errb)
	}
	if code, out, _ := runWeb(t, "verify", "--bundle", good); code != 0 || !strings.Contains(out, "--vkey") {
		t.Fatalf("verify --bundle without --vkey: exit %d\n%s", code, out)
	}

	clone := func() tlog.Bundle {
		var c tlog.Bundle
		data, _ := json.Marshal(bundle)
		json.Unmarshal(data, &c)
		return c
	}
	tampered := clone()
	tampered.Events[1].Event = json.RawMessage(strings.Replace(string(tampered.Events[1].Event), "first", "FIRST", 1))
	wrongProof := clone()
	wrongProof.Events[0].Proof[0] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	dropped := clone()
	dropped.Events = append(dropped.Events[:1], dropped.Events[2:]...)
	_, otherV, _ := note.GenerateKey(nil, "braid.local/braid")
	for name, c := range map[string]struct {
		b    tlog.Bundle
		key  string
		want string
	}{
		"tampered":    {tampered, vkey, "not the braid hash of its fields"},
		"wrong proof": {wrongProof, vkey, "inclusion proof does not lead"},
		"other key":   {bundle, otherV, "does not open with key"},
		"dropped":     {dropped, vkey, "want 2"},
	} {
		code, out, errb := runWeb(t, "verify", "--bundle", write(name, c.b), "--vkey", c.key)
		if code != 1 || !strings.Contains(errb, c.want) {
			t.Errorf("%s: exit %d, want 1 naming %q\n%s%s", name, code, c.want, out, errb)
		}
	}
	if code, _, errb := runWeb(t, "verify", "--bundle", filepath.Join(dir, "missing.json")); code != 2 {
		t.Errorf("missing file: exit %d %s", code, errb)
	}

	if a := b.get("/tickets/999/proof"); a.status != http.StatusNotFound {
		t.Errorf("no such ticket: %d", a.status)
	}
	if a := newBrowser(t, s.URL).get(ticket + "/proof"); a.status != http.StatusSeeOther {
		t.Errorf("signed out: %d, want 303 to /login", a.status)
	}
}
