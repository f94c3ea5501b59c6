package anchor

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tlog"
)

// TlogName is the kind of a C2SP tlog-witness; each witness's receipts are
// stored under "tlog:" and the witness's name (its key's name).
const TlogName = "tlog"

// maxWitnessReply bounds what we read from a witness.
const maxWitnessReply = 64 << 10

// TlogWitness is one witness speaking C2SP tlog-witness over HTTP: it
// cosigns a checkpoint of the log (C2SP tlog-cosignature, cosignature/v1)
// after checking it is consistent with the last one it cosigned.
type TlogWitness struct {
	// URL is the witness's submission prefix: Braid posts to
	// URL + "/add-checkpoint".
	URL      string
	VKey     string // the witness's note verifier key, name+hash+base64
	verifier note.Verifier
}

// NewTlogWitness parses vkey (an Ed25519 note verifier key, type 0x01 or
// cosignature/v1 0x04) for the witness at url.
func NewTlogWitness(url, vkey string) (*TlogWitness, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness key %q: %v", vkey, err)
	}
	if url == "" {
		return nil, fmt.Errorf("witness %s: no URL", v.Name())
	}
	return &TlogWitness{URL: strings.TrimSuffix(url, "/"), VKey: vkey, verifier: v}, nil
}

// Name is the name stored in anchors.witness: "tlog:" and the key's name.
func (w *TlogWitness) Name() string { return TlogName + ":" + w.verifier.Name() }

// TlogPolicy anchors the log's latest signed checkpoint with M tlog
// witnesses and succeeds when at least Quorum of them cosign it. Each
// cosigned checkpoint is one receipt, recorded under its witness's name,
// about the checkpoint's size: position = tree size, hash = the braid hash
// of the event at that position.
type TlogPolicy struct {
	Witnesses []*TlogWitness
	Quorum    int // default all of them
	// Read reads the signed checkpoints and the tree's stored hashes;
	// State keeps the size each witness last acknowledged (witness_sizes).
	Read, State events.Querier
	Client      *http.Client // nil: a client with a 30 s timeout
	Clock       func() time.Time

	// Timings holds the last round trip of each witness, for measurement.
	mu      sync.Mutex
	Timings map[string]time.Duration
	// Failures are the witnesses that did not cosign in the last round.
	Failures []Failure
}

// Name returns "tlog".
func (*TlogPolicy) Name() string { return TlogName }

// Bind gives the policy the database it reads checkpoints from and keeps
// the witnesses' sizes in.
func (p *TlogPolicy) Bind(read, state events.Querier) { p.Read, p.State = read, state }

func (p *TlogPolicy) quorum() int {
	if p.Quorum <= 0 || p.Quorum > len(p.Witnesses) {
		return len(p.Witnesses)
	}
	return p.Quorum
}

// Anchor anchors with the policy and returns the first receipt; use
// AnchorAll for every one.
func (p *TlogPolicy) Anchor(ctx context.Context, head events.Head) (Receipt, error) {
	rs, err := p.AnchorAll(ctx, head)
	if err != nil {
		return Receipt{}, err
	}
	return rs[0], nil
}

// Multi is a witness that gets several receipts in one round (a quorum of
// tlog witnesses); Job and `web anchor` record each.
type Multi interface {
	Witness
	AnchorAll(ctx context.Context, head events.Head) ([]Receipt, error)
}

// Failure is why one witness did not cosign.
type Failure struct {
	Witness string
	Refused bool // it answered no (as opposed to could not be asked)
	Reason  string
}

// QuorumError says the policy did not get enough cosignatures.
type QuorumError struct {
	Got, Want int
	Failures  []Failure
}

func (e *QuorumError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = f.Witness + ": " + f.Reason
	}
	return fmt.Sprintf("%d of %d witness cosignatures, want %d: %s", e.Got, e.Got+len(e.Failures), e.Want, strings.Join(parts, "; "))
}

// ErrNoCheckpoint says the log has no signed checkpoint to anchor yet.
var ErrNoCheckpoint = errors.New("no signed checkpoint yet: `web serve` signs one within a second of the log growing")

// latestCheckpoint returns the newest signed checkpoint of size ≤ max.
func latestCheckpoint(ctx context.Context, q events.Querier, max int64) (tlog.Checkpoint, error) {
	var c tlog.Checkpoint
	var root []byte
	var at string
	err := q.QueryRowContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints WHERE size <= ? AND size > 0 ORDER BY size DESC LIMIT 1`, max).Scan(&c.Size, &root, &c.Note, &at)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") || strings.Contains(err.Error(), "no such table") {
			return c, ErrNoCheckpoint
		}
		return c, fmt.Errorf("latest checkpoint: %w", err)
	}
	copy(c.Root[:], root)
	c.SignedAt, _ = time.Parse(time.RFC3339Nano, at)
	return c, nil
}

// AnchorAll posts the latest signed checkpoint (at most head's size) to
// every witness at once and returns the receipts of those that cosigned,
// or a *QuorumError (errs.Invalid when a witness refused) when fewer than
// the quorum did.
func (p *TlogPolicy) AnchorAll(ctx context.Context, head events.Head) ([]Receipt, error) {
	if p.Read == nil || p.State == nil {
		return nil, errors.New("tlog witness: no database bound")
	}
	cp, err := latestCheckpoint(ctx, p.Read, head.Position)
	if err != nil {
		return nil, err
	}
	at, err := events.Get(ctx, p.Read, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("tlog witness: the event at position %d: %w", cp.Size, err)
	}
	type result struct {
		r   Receipt
		err error
		d   time.Duration
	}
	results := make([]result, len(p.Witnesses))
	var wg sync.WaitGroup
	for i, w := range p.Witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r, err := p.cosign(ctx, w, cp)
			results[i] = result{r, err, time.Since(start)}
		}()
	}
	wg.Wait()
	var out []Receipt
	var fails []Failure
	refused := false
	p.mu.Lock()
	if p.Timings == nil {
		p.Timings = map[string]time.Duration{}
	}
	for i, res := range results {
		w := p.Witnesses[i]
		p.Timings[w.Name()] = res.d
		if res.err != nil {
			f := Failure{Witness: w.Name(), Refused: Refused(res.err), Reason: errMessageOf(res.err)}
			refused = refused || f.Refused
			fails = append(fails, f)
			continue
		}
		res.r.Head = &events.Head{Position: cp.Size, Hash: at.Hash}
		out = append(out, res.r)
	}
	p.Failures = fails
	p.mu.Unlock()
	if len(out) < p.quorum() {
		qe := &QuorumError{Got: len(out), Want: p.quorum(), Failures: fails}
		if refused {
			return nil, errs.E(errs.Invalid, "%s", qe.Error())
		}
		return nil, qe
	}
	return out, nil
}

// Check is done by a TlogChecker, which holds the log's key.
func (p *TlogPolicy) Check(context.Context, events.Head, Receipt) error {
	return errors.New("tlog receipts are checked by a TlogChecker")
}

func errMessageOf(err error) string {
	if errs.Code(err) == errs.Internal {
		return err.Error()
	}
	return errs.Message(err)
}

// lastSize is the tree size w last acknowledged, 0 when none.
func (p *TlogPolicy) lastSize(ctx context.Context, w *TlogWitness) (int64, error) {
	var n int64
	err := p.State.QueryRowContext(ctx, `SELECT size FROM witness_sizes WHERE witness = ?`, w.Name()).Scan(&n)
	if err != nil && strings.Contains(err.Error(), "no rows") {
		return 0, nil
	}
	return n, err
}

func (p *TlogPolicy) keepSize(ctx context.Context, w *TlogWitness, size int64) error {
	clock := p.Clock
	if clock == nil {
		clock = time.Now
	}
	_, err := p.State.ExecContext(ctx, `INSERT INTO witness_sizes (witness, size, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (witness) DO UPDATE SET size = excluded.size, updated_at = excluded.updated_at`,
		w.Name(), size, clock().UTC().Format(events.TimeFormat))
	if err != nil {
		return fmt.Errorf("keep witness size: %w", err)
	}
	return nil
}

// cosign runs the add-checkpoint exchange with one witness.
func (p *TlogPolicy) cosign(ctx context.Context, w *TlogWitness, cp tlog.Checkpoint) (Receipt, error) {
	old, err := p.lastSize(ctx, w)
	if err != nil {
		return Receipt{}, err
	}
	if old > cp.Size {
		old = 0 // the witness will say what it holds
	}
	for attempt := 0; ; attempt++ {
		body, err := p.request(ctx, old, cp)
		if err != nil {
			return Receipt{}, err
		}
		status, ctype, reply, err := p.post(ctx, w, body)
		if err != nil {
			return Receipt{}, err
		}
		switch {
		case status == http.StatusOK:
			r, err := w.receipt(cp, reply)
			if err != nil {
				return Receipt{}, err
			}
			if err := p.keepSize(ctx, w, cp.Size); err != nil {
				return Receipt{}, err
			}
			r.Details["url"] = w.URL
			return r, nil
		case status == http.StatusConflict && strings.HasPrefix(ctype, "text/x.tlog.size"):
			known, perr := strconv.ParseInt(strings.TrimSpace(string(reply)), 10, 64)
			switch {
			case perr != nil || known < 0:
				return Receipt{}, refused("answered 409 with a size that is not a number: %q", clip(reply))
			case known > cp.Size:
				return Receipt{}, refused("it has cosigned a tree of %d leaves, larger than this checkpoint's %d: the log was rolled back or forked", known, cp.Size)
			case attempt > 0:
				return Receipt{}, refused("it holds a different tree of %d leaves than this log (409 twice): the log forked", known)
			}
			old = known
		default:
			return Receipt{}, witnessRefusal(status, reply, old, cp.Size)
		}
	}
}

// witnessRefusal words a witness's error answer. 4xx are refusals; 5xx
// are refusals too when they say something, since a witness that answers
// is reachable (omniwitness answers 500 for a wrong log key).
func witnessRefusal(status int, reply []byte, old, size int64) error {
	msg := clip(reply)
	switch status {
	case http.StatusUnprocessableEntity:
		return refused("422: the consistency proof from size %d to %d does not hold against the tree it cosigned (%s): the log was rewritten", old, size, msg)
	case http.StatusForbidden:
		return refused("403: it does not accept the log's signature (%s): add the log's key (web key) to the witness", msg)
	case http.StatusNotFound:
		return refused("404: it does not know this log's origin (%s): add the log to the witness", msg)
	case http.StatusBadRequest:
		return refused("400: it refused the request (%s)", msg)
	}
	if status >= 500 && status != http.StatusBadGateway && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
		if msg == "" {
			msg = "no reason given (omniwitness answers 500 when the log's key is not the one it holds for this origin: add the key web key prints)"
		}
		return refused("%d: %s", status, msg)
	}
	return fmt.Errorf("witness answered %d: %s", status, msg)
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// request builds an add-checkpoint body: "old N", the consistency proof
// from N, a blank line, the signed checkpoint.
func (p *TlogPolicy) request(ctx context.Context, old int64, cp tlog.Checkpoint) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	if old > 0 && old < cp.Size {
		proof, err := xtlog.ProveTree(cp.Size, old, tlog.Reader{Ctx: ctx, Q: p.Read})
		if err != nil {
			return nil, fmt.Errorf("consistency proof from %d to %d: %w", old, cp.Size, err)
		}
		for _, h := range proof {
			b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	b.WriteString(cp.Note)
	return b.Bytes(), nil
}

func (p *TlogPolicy) post(ctx context.Context, w *TlogWitness, body []byte) (int, string, []byte, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, fmt.Errorf("witness %s: %w", w.URL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("witness %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessReply))
	if err != nil {
		return 0, "", nil, fmt.Errorf("witness %s: %w", w.URL, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), reply, nil
}

// receipt checks a witness's 200 answer (cosignature lines) against the
// checkpoint and returns the cosigned checkpoint: the log's note with the
// witness's signature line added.
func (w *TlogWitness) receipt(cp tlog.Checkpoint, reply []byte) (Receipt, error) {
	var mine []string
	for line := range strings.Lines(string(reply)) {
		if strings.HasPrefix(line, "— "+w.verifier.Name()+" ") {
			mine = append(mine, strings.TrimSuffix(line, "\n"))
		}
	}
	if len(mine) == 0 {
		return Receipt{}, refused("its answer has no cosignature by %s: %q", w.verifier.Name(), clip(reply))
	}
	cosigned := cp.Note + strings.Join(mine, "\n") + "\n"
	n, err := note.Open([]byte(cosigned), note.VerifierList(w.verifier))
	if err != nil {
		return Receipt{}, refused("its cosignature does not verify with key %s: %v", w.VKey, err)
	}
	t, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		return Receipt{}, refused("its cosignature carries no cosignature/v1 time: %v", err)
	}
	origin, h, _ := tlog.ParseCheckpoint([]byte(n.Text))
	return Receipt{Witness: w.Name(), Data: []byte(cosigned), Details: map[string]string{
		"origin": origin, "size": strconv.FormatInt(h.Size, 10), "root": base64.StdEncoding.EncodeToString(h.Root[:]),
		"cosigned_at": t.UTC().Format(time.RFC3339), "vkey": w.VKey,
	}}, nil
}

// TlogChecker checks stored tlog receipts offline: the cosigned checkpoint
// carries a valid signature by the log's key and a valid cosignature by the
// witness's key, its origin is the log's, its size is the anchor's
// position, and its root is the root of the log's tree at that size.
type TlogChecker struct {
	Read events.Querier
	// Log verifies the log's signature; nil: receipts cannot be checked.
	Log note.Verifier
	// Keys are the witness keys the operator trusts, by name; a witness not
	// listed is checked with the key recorded beside its receipt.
	Keys map[string]note.Verifier
}

// Name returns "tlog".
func (*TlogChecker) Name() string { return TlogName }

// Anchor is not what a checker does.
func (*TlogChecker) Anchor(context.Context, events.Head) (Receipt, error) {
	return Receipt{}, errors.New("a tlog checker does not anchor")
}

// Check verifies r for head as the type says.
func (c *TlogChecker) Check(ctx context.Context, head events.Head, r Receipt) error {
	name, ok := strings.CutPrefix(r.Witness, TlogName+":")
	if !ok {
		return refused("not a tlog receipt: witness %q", r.Witness)
	}
	wv, ok := c.Keys[name]
	if !ok {
		v, err := fnote.NewVerifierForCosignatureV1(r.Details["vkey"])
		if err != nil {
			return refused("no key for witness %s (pass --witness-key)", name)
		}
		wv = v
	}
	if wv.Name() != name {
		return refused("the witness key is named %s, the receipt's witness %s", wv.Name(), name)
	}
	cc, err := CheckCosigned(ctx, c.Read, r.Data, c.Log, wv)
	if err != nil {
		return err
	}
	if cc.Size != head.Position {
		return refused("the cosigned checkpoint is of size %d, the anchor says position %d", cc.Size, head.Position)
	}
	return nil
}

// Cosigned is what CheckCosigned found in a cosigned checkpoint.
type Cosigned struct {
	Origin     string
	Size       int64
	Root       tlog.Hash
	Witness    string
	CosignedAt time.Time
}

// CheckCosigned checks a cosigned checkpoint against the log in q: signed
// by logKey, cosigned by witnessKey, and its root is the root of q's tree
// at its size. A refusal (errs.Invalid) names what does not hold.
func CheckCosigned(ctx context.Context, q events.Querier, data []byte, logKey, witnessKey note.Verifier) (Cosigned, error) {
	var out Cosigned
	if logKey == nil {
		return out, errors.New("no log key to check the checkpoint's signature with")
	}
	n, err := note.Open(data, note.VerifierList(logKey, witnessKey))
	if err != nil {
		return out, refused("the cosigned checkpoint does not open: %v", err)
	}
	var logSigned, cosigned bool
	for _, s := range n.Sigs {
		switch {
		case s.Name == logKey.Name() && s.Hash == logKey.KeyHash():
			logSigned = true
		case s.Name == witnessKey.Name() && s.Hash == witnessKey.KeyHash():
			cosigned = true
			out.CosignedAt, _ = fnote.CoSigV1Timestamp(s)
		}
	}
	if !logSigned {
		return out, refused("the checkpoint is not signed by the log's key %s", logKey.Name())
	}
	if !cosigned {
		return out, refused("the checkpoint carries no cosignature by %s", witnessKey.Name())
	}
	origin, h, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return out, refused("%v", err)
	}
	out.Origin, out.Size, out.Root, out.Witness = origin, h.Size, h.Root, witnessKey.Name()
	if origin != logKey.Name() {
		return out, refused("the checkpoint's origin %q is not the log's %q", origin, logKey.Name())
	}
	root, err := xtlog.TreeHash(h.Size, tlog.Reader{Ctx: ctx, Q: q})
	if err != nil {
		return out, refused("the log has no tree of %d leaves to compare the cosigned root with: %v", h.Size, err)
	}
	if root != h.Root {
		return out, refused("the log's tree of %d leaves has root %s, but %s cosigned root %s at %s: the log was rewritten",
			h.Size, base64.StdEncoding.EncodeToString(root[:]), witnessKey.Name(), base64.StdEncoding.EncodeToString(h.Root[:]), out.CosignedAt.UTC().Format(time.RFC3339))
	}
	return out, nil
}

// SortedNames returns the names in m, sorted.
func SortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CosignedBy is one witness's cosignature of a checkpoint.
type CosignedBy struct {
	Witness string // the witness's name (its key's name)
	At      string // the cosignature's time, RFC 3339 UTC
}

// LatestCosigned returns the largest tree size any tlog witness cosigned,
// with every witness that cosigned that size and when (the newest
// cosignature of each), and false when none did.
func LatestCosigned(ctx context.Context, q events.Querier) (int64, []CosignedBy, bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+anchorColumns+` FROM anchors
		WHERE substr(witness, 1, 5) = 'tlog:' AND position = (SELECT MAX(position) FROM anchors WHERE substr(witness, 1, 5) = 'tlog:')
		ORDER BY id DESC`)
	if err != nil {
		return 0, nil, false, fmt.Errorf("latest cosigned checkpoint: %w", err)
	}
	defer rows.Close()
	var size int64
	var out []CosignedBy
	seen := map[string]bool{}
	for rows.Next() {
		a, err := scanAnchor(rows)
		if err != nil {
			return 0, nil, false, fmt.Errorf("latest cosigned checkpoint: %w", err)
		}
		name := strings.TrimPrefix(a.Receipt.Witness, TlogName+":")
		if seen[name] {
			continue
		}
		seen[name] = true
		size = a.Head.Position
		at := a.Receipt.Details["cosigned_at"]
		if at == "" {
			at = a.AnchoredAt.UTC().Format(time.RFC3339)
		}
		out = append(out, CosignedBy{Witness: name, At: at})
	}
	if err := rows.Err(); err != nil {
		return 0, nil, false, fmt.Errorf("latest cosigned checkpoint: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Witness < out[j].Witness })
	return size, out, len(out) > 0, nil
}
