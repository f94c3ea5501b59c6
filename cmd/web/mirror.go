package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/auth"
	"braid/internal/events"
	"braid/internal/tlog"
)

// mirrorCmd is `web mirror URL --db COPY`: it keeps COPY a read-only,
// verified copy of the Braid at URL (docs/verification.md). Each pull
// reads the source's signed checkpoint, checks it with the source's key
// (pinned at the first pull, or given by --vkey) and proves it consistent
// with the checkpoint the copy holds from the source's hash tiles (RFC
// 6962, C2SP tlog-tiles); then it reads the entry bundles after it,
// checks each entry's leaf against the tiles and appends the events
// through the import path (every link checked, every projection applied),
// in one transaction with the tree's stored hashes and the checkpoint. A
// checkpoint that is not signed by the pinned key, or not consistent with
// the one held, is refused: exit 1, naming both.
func mirrorCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "mirror", "mirror URL --db COPY [--vkey KEY] [--user NAME --password-file FILE] [--every D]")
	vkey := fs.String("vkey", "", "the source's verifier key (its `web key`, or its /verify page); default: the one pinned at the first pull, which reads it from the source's /verify (trust on first use)")
	user := fs.String("user", "", "sign in to the source as this person to read its entry bundles (they hold every event, so they are behind sign-in)")
	pwFile := fs.String("password-file", "", "with --user: a file holding the password (first line)")
	every := fs.Duration("every", 0, "keep pulling this often, e.g. 1m (0: pull once and exit)")
	var source string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		source, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if source == "" && fs.NArg() > 0 {
		source = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return fail(exitFailed, "%v", err)
		}
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(source)
	if source == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fail(exitFailed, "which Braid? usage: web mirror URL --db COPY, URL an http(s) address such as https://braid.example.org")
	}
	if *every < 0 {
		return fail(exitFailed, "--every %s: want a positive interval, e.g. 1m (0: pull once)", *every)
	}
	if (*user == "") != (*pwFile == "") {
		return fail(exitFailed, "--user and --password-file go together")
	}
	m := &mirror{base: strings.TrimRight(u.String(), "/"), db: *dbPath, vkey: *vkey, user: *user, out: e.stdout}
	if *pwFile != "" {
		b, err := readCheckpointFile(*pwFile, e.stdin) // at most 64 KiB
		if err != nil {
			return fail(exitFailed, "--password-file: %v", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		m.password = strings.TrimSuffix(pw, "\r")
	}
	jar, _ := cookiejar.New(nil)
	m.client = &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		err := m.pull(ctx)
		var xe *exitError
		if *every == 0 || (errors.As(err, &xe) && xe.code == exitBroken) {
			return err // a refused checkpoint stays refused: stop
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "web mirror: %v (trying again in %s)\n", err, *every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*every):
		}
	}
}

type mirror struct {
	base, db, vkey string
	user, password string
	signedIn       bool
	client         *http.Client
	out            io.Writer
	tiles          map[string][]byte // upper tiles read during one pull
}

// mirrorState is the mirror table's row.
type mirrorState struct {
	source, vkey, origin string
	held                 tlog.Head
}

// fetchError is a failure to read from the source (exit 2, not a refusal).
type fetchError struct{ err error }

func (f *fetchError) Error() string { return f.err.Error() }

// Largest answers the mirror accepts: a checkpoint, a hash tile, an entry
// bundle (256 export lines of at most 64 KiB each) and the /verify JSON.
const (
	maxTile   = tlog.TileWidth * 32
	maxBundle = tlog.TileWidth * (2 + 0xffff)
	maxJSON   = 1 << 20
)

// get reads path from the source, at most limit bytes; any status but
// 200 is an error naming it.
func (m *mirror) get(ctx context.Context, path string, limit int64, hdr ...string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+path, nil)
	if err != nil {
		return nil, 0, &fetchError{err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, 0, &fetchError{fmt.Errorf("GET %s: %v", path, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, &fetchError{fmt.Errorf("GET %s: %v", path, err)}
	}
	if int64(len(b)) > limit {
		return nil, resp.StatusCode, &fetchError{fmt.Errorf("GET %s: the answer is longer than %d bytes", path, limit)}
	}
	if resp.StatusCode != http.StatusOK {
		return b, resp.StatusCode, &fetchError{fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))}
	}
	return b, resp.StatusCode, nil
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs in to the source with --user and --password-file, as a
// browser does: the sign-in form's CSRF token, then the form.
func (m *mirror) signIn(ctx context.Context) error {
	page, _, err := m.get(ctx, "/login", maxJSON)
	if err != nil {
		return err
	}
	tok := csrfField.FindSubmatch(page)
	if tok == nil {
		return &fetchError{errors.New("the source's sign-in page has no form token")}
	}
	form := url.Values{"username": {m.user}, "password": {m.password}, "_csrf": {string(tok[1])}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return &fetchError{err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", m.base)
	resp, err := m.client.Do(req)
	if err != nil {
		return &fetchError{fmt.Errorf("sign in: %v", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return &fetchError{fmt.Errorf("sign in to %s as %s: %s (check --user and --password-file)", m.base, m.user, resp.Status)}
	}
	m.signedIn = true
	return nil
}

// bundle reads one entry bundle, signing in first when it needs to.
func (m *mirror) bundle(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if m.user != "" && !m.signedIn {
		if err := m.signIn(ctx); err != nil {
			return nil, err
		}
	}
	b, status, err := m.get(ctx, "/"+t.Path(), maxBundle)
	if status == http.StatusSeeOther {
		if m.user == "" {
			return nil, fail(exitFailed, "the source's entry bundles are behind sign-in: pass --user NAME --password-file FILE (someone who may read every event)")
		}
		return nil, fail(exitFailed, "the source sent the mirror's session to sign-in again: is %s still allowed to sign in?", m.user)
	}
	return b, err
}

// ReadTiles reads hash tiles from the source (x/mod tlog.TileReader), for
// TileHashReader, which checks them against the signed root.
func (m *mirror) ReadTiles(tiles []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := "/" + tlog.Tile{L: t.L, N: t.N, W: t.W}.Path()
		if b, ok := m.tiles[p]; ok {
			out[i] = b
			continue
		}
		b, _, err := m.get(context.Background(), p, maxTile)
		if err != nil {
			return nil, err
		}
		if t.L > 0 {
			m.tiles[p] = b
		}
		out[i] = b
	}
	return out, nil
}

func (m *mirror) Height() int                                 { return tlog.TileHeight }
func (m *mirror) SaveTiles(tiles []xtlog.Tile, data [][]byte) {}

// readState reads the mirror row of COPY, if any.
func readState(ctx context.Context, q events.Querier) (mirrorState, bool, error) {
	var s mirrorState
	var root []byte
	err := q.QueryRowContext(ctx, `SELECT source, vkey, origin, size, root FROM mirror WHERE id = 1`).Scan(&s.source, &s.vkey, &s.origin, &s.held.Size, &root)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	copy(s.held.Root[:], root)
	return s, true, nil
}

// pinKey reads the source's verifier key from its /verify page, for the
// first pull without --vkey.
func (m *mirror) pinKey(ctx context.Context) (string, error) {
	for range 50 {
		b, status, err := m.get(ctx, "/verify", maxJSON, "Accept", "application/json")
		if status == http.StatusAccepted { // the source is still checking its log
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return "", err
		}
		var v struct {
			Checkpoint *struct {
				VKey string `json:"vkey"`
			} `json:"checkpoint"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Checkpoint == nil || v.Checkpoint.VKey == "" {
			return "", fail(exitFailed, "the source's /verify names no log key: pass --vkey")
		}
		return v.Checkpoint.VKey, nil
	}
	return "", fail(exitFailed, "the source's /verify kept answering that it is still checking: pass --vkey")
}

// pull brings COPY up to the source's latest checkpoint, or refuses it.
func (m *mirror) pull(ctx context.Context) error {
	m.tiles = map[string][]byte{}
	db, err := openDB(ctx, m.db)
	if err != nil {
		return err
	}
	defer db.Close()
	st, isMirror, err := readState(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%s: %v", m.db, err)
	}
	head, err := events.ReadHead(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%s: %v", m.db, err)
	}
	switch {
	case !isMirror && head.Position > 0:
		return fail(exitFailed, "%s holds %d events and is not a mirror: mirror into a new database", m.db, head.Position)
	case isMirror && st.source != m.base:
		return fail(exitFailed, "%s is a mirror of %s, not %s", m.db, st.source, m.base)
	case isMirror && m.vkey != "" && m.vkey != st.vkey:
		return fail(exitFailed, "--vkey %s is not the key pinned in %s (%s)", m.vkey, m.db, st.vkey)
	case isMirror && head.Position != st.held.Size:
		return fail(exitFailed, "%s holds %d events but its checkpoint is of size %d", m.db, head.Position, st.held.Size)
	}
	vkey := m.vkey
	if isMirror {
		vkey = st.vkey
	} else {
		st.held.Root = tlog.EmptyRoot
		if vkey == "" {
			if vkey, err = m.pinKey(ctx); err != nil {
				return err
			}
			fmt.Fprintf(m.out, "pinned the source's log key %s (trust on first use: compare it with `web key` on the source)\n", vkey)
		}
	}
	refuse := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if isMirror {
			now := time.Now().UTC().Format(time.RFC3339Nano)
			db.Write.ExecContext(ctx, `UPDATE mirror SET attempted_at = ?, problem = ? WHERE id = 1`, now, "refused: "+msg)
		}
		return fail(exitBroken, "refused: %s", msg)
	}
	note, _, err := m.get(ctx, "/checkpoint", maxCheckpoint)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	origin, cp, err := tlog.OpenCheckpoint(note, vkey)
	if err != nil {
		return refuse("the source's checkpoint: %v", err)
	}
	if isMirror && origin != st.origin {
		return refuse("the source's checkpoint is for %q, the copy holds %q", origin, st.origin)
	}
	both := fmt.Sprintf("the source's checkpoint at size %d (root %s), the copy's at size %d (root %s)", cp.Size, tlog.B64(cp.Root), st.held.Size, tlog.B64(st.held.Root))
	switch {
	case cp.Size < st.held.Size:
		return refuse("the source went back: %s", both)
	case cp.Size == st.held.Size && cp.Root != st.held.Root:
		return refuse("the source forked: %s", both)
	case cp.Size == st.held.Size:
		now := time.Now().UTC().Format(time.RFC3339Nano)
		if isMirror {
			if _, err := db.Write.ExecContext(ctx, `UPDATE mirror SET attempted_at = ?, pulled_at = ?, source_size = ?, problem = '' WHERE id = 1`, now, now, cp.Size); err != nil {
				return fail(exitFailed, "%s: %v", m.db, err)
			}
		}
		fmt.Fprintf(m.out, "up to date: %s holds the source's checkpoint at size %d (root %s)\n", m.db, cp.Size, tlog.B64(cp.Root))
		return nil
	}
	thr := xtlog.TileHashReader(xtlog.Tree{N: cp.Size, Hash: cp.Root}, m)
	fetchOr := func(err error, format string, args ...any) error {
		var fe *fetchError
		var xe *exitError
		switch {
		case errors.As(err, &xe):
			return err
		case errors.As(err, &fe):
			return fail(exitFailed, "%v", err)
		}
		return refuse(format, args...)
	}
	if st.held.Size > 0 {
		proof, err := xtlog.ProveTree(cp.Size, st.held.Size, thr)
		if err == nil {
			err = xtlog.CheckTree(proof, cp.Size, cp.Root, st.held.Size, st.held.Root)
		}
		if err != nil {
			return fetchOr(err, "not consistent: %s (%v)", both, err)
		}
	}

	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fail(exitFailed, "%v", err)
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	reg, _ := registry()
	app, err := events.NewAppender(ctx, conn, reg)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if app.Head().Position != st.held.Size {
		app.Close()
		return fail(exitFailed, "%s changed during the pull: another mirror is writing it", m.db)
	}
	for n := st.held.Size / tlog.TileWidth; n*tlog.TileWidth < cp.Size; n++ {
		t := tlog.Tile{N: n, W: int(min(tlog.TileWidth, cp.Size-n*tlog.TileWidth)), Entries: true}
		first := n * tlog.TileWidth
		idx := make([]int64, t.W)
		for i := range idx {
			idx[i] = xtlog.StoredHashIndex(0, first+int64(i))
		}
		leaves, err := thr.ReadHashes(idx)
		if err != nil {
			app.Close()
			return fetchOr(err, "the source's hash tiles do not match its checkpoint at size %d (root %s): %v", cp.Size, tlog.B64(cp.Root), err)
		}
		b, err := m.bundle(ctx, t)
		if err != nil {
			app.Close()
			return fetchOr(err, "")
		}
		for i := range t.W {
			pos := first + int64(i) + 1
			if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
				app.Close()
				return refuse("entry bundle %s ends before the entry for position %d", t.Path(), pos)
			}
			line := b[2 : 2+int(binary.BigEndian.Uint16(b))]
			b = b[2+len(line):]
			if pos <= st.held.Size {
				continue
			}
			err := events.ReadExport(bytes.NewReader(line), func(_ int64, e *events.Event) error {
				if e.Position != pos {
					return fmt.Errorf("the entry for position %d holds the event at position %d", pos, e.Position)
				}
				if tlog.LeafHash(e.Hash) != leaves[i] {
					return fmt.Errorf("the entry for position %d is not the tree's leaf %d: its hash %s is not the one the source signed", pos, pos-1, events.Hex(e.Hash))
				}
				return app.Add(e)
			})
			var broken *events.BrokenError
			switch {
			case errors.As(err, &broken):
				app.Close()
				return refuse("the source's log is broken at position %d: %s", broken.Failure.Position, broken.Failure.Reason)
			case err != nil:
				app.Close()
				return refuse("entry bundle %s: %v", t.Path(), err)
			}
		}
		if len(b) != 0 {
			app.Close()
			return refuse("entry bundle %s has %d bytes after its %d entries", t.Path(), len(b), t.W)
		}
	}
	got, err := app.Finish()
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if err := tlog.ExtendStored(ctx, conn, cp.Size); err != nil {
		return fail(exitFailed, "%v", err)
	}
	root, err := tlog.StoredRoot(ctx, conn, cp.Size)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if root != cp.Root {
		return refuse("the copy's tree of the pulled events has root %s, the source's checkpoint %s", tlog.B64(root), tlog.B64(cp.Root))
	}
	if m.signedIn {
		// The person who mirrors may read every event: they sign in on the
		// copy with the password that signed the mirror in to the source.
		// Nobody else can (credentials are not in the log).
		hash, err := bcrypt.GenerateFromPassword([]byte(m.password), bcrypt.DefaultCost)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		// Credentials are keyed by the person's id, not the name they sign in with.
		id, err := auth.IDByUsername(ctx, conn, m.user)
		if err != nil {
			return fail(exitFailed, "the mirroring person %q is not in the pulled log: %v", m.user, err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)
			ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash`, id, hash); err != nil {
			return fail(exitFailed, "%v", err)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := conn.ExecContext(ctx, `INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING`,
		cp.Size, cp.Root[:], string(note), now); err != nil {
		return fail(exitFailed, "%v", err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO mirror (id, source, vkey, origin, size, root, pulled_at, attempted_at, source_size, problem)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, '')
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root, pulled_at = excluded.pulled_at,
			attempted_at = excluded.attempted_at, source_size = excluded.source_size, problem = ''`,
		m.base, vkey, origin, cp.Size, cp.Root[:], now, now, cp.Size); err != nil {
		return fail(exitFailed, "%v", err)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fail(exitFailed, "%v", err)
	}
	done = true
	fmt.Fprintf(m.out, "pulled %d events from %s: %s holds the checkpoint at size %d (root %s), consistent with the one it held at size %d (root %s)\n",
		got, m.base, m.db, cp.Size, tlog.B64(cp.Root), st.held.Size, tlog.B64(st.held.Root))
	return nil
}
