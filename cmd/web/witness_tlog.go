package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"braid/internal/anchor"
	"braid/internal/events"
	"braid/internal/tlog"
)

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }

func (r *repeated) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty value")
	}
	*r = append(*r, strings.TrimSpace(v))
	return nil
}

// tlogFlags are the flags of --witness tlog.
type tlogFlags struct {
	urls, keys repeated
	quorum     *int
}

func addTlogFlags(fs *flag.FlagSet) *tlogFlags {
	t := &tlogFlags{}
	fs.Var(&t.urls, "witness-url", "tlog: URL of a C2SP tlog-witness (Braid posts to URL/add-checkpoint); repeat for several, each with its --witness-key in the same order")
	fs.Var(&t.keys, "witness-key", "tlog: the witness's note verifier key, name+hash+base64; repeat with --witness-url. With verify: a witness key to check tlog receipts and --cosigned with")
	t.quorum = fs.Int("witness-quorum", 0, "tlog: how many witnesses must cosign for the anchor to count (default: all of them)")
	return t
}

// policy builds the tlog witness policy from the flags.
func (t *tlogFlags) policy() (*anchor.TlogPolicy, error) {
	if len(t.urls) == 0 || len(t.keys) != len(t.urls) {
		return nil, fail(exitFailed, "--witness tlog needs --witness-url and --witness-key, one key per URL in the same order (got %d URLs, %d keys)", len(t.urls), len(t.keys))
	}
	p := &anchor.TlogPolicy{Quorum: *t.quorum}
	seen := map[string]bool{}
	for i, u := range t.urls {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fail(exitFailed, "--witness-url %q: want an http:// or https:// URL", u)
		}
		w, err := anchor.NewTlogWitness(u, t.keys[i])
		if err != nil {
			return nil, fail(exitFailed, "--witness-key: %v", err)
		}
		if seen[w.Name()] {
			return nil, fail(exitFailed, "--witness-key: witness %s given twice", w.Name())
		}
		seen[w.Name()] = true
		p.Witnesses = append(p.Witnesses, w)
	}
	if *t.quorum < 0 || *t.quorum > len(p.Witnesses) {
		return nil, fail(exitFailed, "--witness-quorum %d: want 1 to %d (the number of witnesses)", *t.quorum, len(p.Witnesses))
	}
	return p, nil
}

// trusted parses the --witness-key values as witness keys by name.
func (t *tlogFlags) trusted() (map[string]note.Verifier, error) {
	out := map[string]note.Verifier{}
	for _, k := range t.keys {
		v, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			return nil, fail(exitFailed, "--witness-key %q: %v", k, err)
		}
		out[v.Name()] = v
	}
	return out, nil
}

// bindWitnesses gives the tlog witness or checker the database (and the
// log's verifier key, for checking).
func bindWitnesses(ws map[string]anchor.Witness, db *events.DB, logVKey string) error {
	for _, w := range ws {
		bindAnchoring(w, db)
	}
	c, ok := ws[anchor.TlogName].(*anchor.TlogChecker)
	if !ok {
		return nil
	}
	if logVKey == "" {
		// Without the log's key a tlog receipt cannot be checked: the
		// anchors are compared with the log only, and say so.
		delete(ws, anchor.TlogName)
		return nil
	}
	v, err := note.NewVerifier(logVKey)
	if err != nil {
		return fail(exitFailed, "the log's verifier key %q: %v", logVKey, err)
	}
	c.Read, c.Log = db.Read, v
	return nil
}

// bindAnchoring gives a witness what it reads from the database: the
// tree root at the anchored position (rfc3161 and evm anchor it beside the
// head), the signed checkpoints and the witnesses' sizes (tlog).
func bindAnchoring(w anchor.Witness, db *events.DB) {
	switch w := w.(type) {
	case *anchor.RFC3161:
		w.Root = anchor.TreeRoot(db.Read)
	case *anchor.EVM:
		w.Root = anchor.TreeRoot(db.Read)
	case *anchor.TlogPolicy:
		w.Bind(db.Read, db.Aux)
	}
}

// logVKeyFor is the log's verifier key for verify: --vkey, else the one of
// the key file beside the database, else "" (tlog receipts not checked).
func logVKeyFor(vkey, dbPath string) (string, error) {
	if vkey != "" {
		return vkey, nil
	}
	k, err := tlog.ReadKey(dbPath + ".key")
	if errors.Is(err, iofs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fail(exitFailed, "%v", err)
	}
	return k.VKey, nil
}

// checkCosignedFile checks a cosigned checkpoint kept outside the log (a
// tlog receipt downloaded earlier, or one a witness holds) against the
// log: exit 1 when the log's tree at its size has another root.
func checkCosignedFile(ctx context.Context, e env, db *events.DB, path, logVKey string, trusted map[string]note.Verifier) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if logVKey == "" {
		return fail(exitFailed, "--cosigned needs the log's key: --vkey, or the key file beside the database")
	}
	lv, err := note.NewVerifier(logVKey)
	if err != nil {
		return fail(exitFailed, "the log's verifier key %q: %v", logVKey, err)
	}
	if len(trusted) == 0 {
		return fail(exitFailed, "--cosigned needs --witness-key: the key of the witness whose cosignature it carries")
	}
	var lastErr error
	for _, name := range anchor.SortedNames(trusted) {
		c, err := anchor.CheckCosigned(ctx, db.Read, data, lv, trusted[name])
		if err == nil {
			fmt.Fprintf(e.stdout, "cosigned checkpoint %s: size %d root matches the log's tree, cosigned by %s at %s\n",
				path, c.Size, c.Witness, c.CosignedAt.UTC().Format("2006-01-02T15:04:05Z"))
			return nil
		}
		if anchor.Refused(err) && !strings.Contains(err.Error(), "no cosignature by") {
			return fail(exitBroken, "cosigned checkpoint %s refused: %s", path, errMessage(err))
		}
		lastErr = err
	}
	return fail(exitBroken, "cosigned checkpoint %s refused: %s", path, errMessage(lastErr))
}

// anchorTlog runs one round of the tlog witness policy for `web anchor`:
// one line per cosignature on stdout; exit 1 naming each witness that
// refused when fewer than the quorum cosigned.
func anchorTlog(ctx context.Context, e env, db *events.DB, p *anchor.TlogPolicy, head events.Head) error {
	rs, err := p.AnchorAll(ctx, head)
	switch {
	case errors.Is(err, anchor.ErrNoCheckpoint):
		return fail(exitFailed, "nothing to anchor: %v", err)
	case anchor.Refused(err):
		return fail(exitBroken, "witnesses refused: %s", errMessage(err))
	case err != nil:
		return fail(exitFailed, "%v", err)
	}
	now := time.Now()
	for _, r := range rs {
		a, err := anchor.Record(ctx, db.Aux, head, r, now)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		fmt.Fprintf(e.stdout, "anchored position %d hash %s with %s: %s round_trip=%s\n",
			a.Head.Position, hex.EncodeToString(a.Head.Hash[:]), a.Receipt.Witness, a.Receipt.Summary(), p.Timings[r.Witness].Round(time.Microsecond))
	}
	for _, f := range p.Failures {
		fmt.Fprintf(e.stderr, "witness %s did not cosign (the quorum was met without it): %s\n", f.Witness, f.Reason)
	}
	return nil
}
