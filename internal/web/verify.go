package web

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/anchor"
	"braid/internal/attach"
	"braid/internal/events"
	"braid/internal/tlog"
	"braid/templates"
)

// AnchorCheck is one recorded anchor checked against the log: the hash it
// recorded at Position must be the log's hash there.
type AnchorCheck struct {
	ID         int64  `json:"id"`
	Position   int64  `json:"position"`
	Witness    string `json:"witness"`
	Hash       string `json:"hash"` // what the anchor recorded, hex
	AnchoredAt string `json:"anchored_at"`
	OK         bool   `json:"ok"`
	// Problem says what is wrong when OK is false.
	Problem string `json:"problem,omitempty"`
	// Receipt says what the witness's receipt check found, once there is
	// one ("" while receipts are not checked).
	Receipt string `json:"receipt,omitempty"`
}

// AnchorFunc checks the recorded anchors against the log.
type AnchorFunc func(ctx context.Context) ([]AnchorCheck, error)

// VerifyReport is the answer of `web verify --json` and of GET /verify as
// JSON (CONTRACT.md): the braid's verdict combined with the anchors'.
type VerifyReport struct {
	Intact  bool            `json:"intact"`
	Events  int64           `json:"events"`
	Head    string          `json:"head"`
	Failure *events.Failure `json:"failure"`
	Anchors []AnchorCheck   `json:"anchors"`
	// Erased counts the braid v2 payloads found erased (their commitments
	// checked, their data gone): not a failure.
	Erased int64 `json:"erased,omitempty"`
	// Note says what the check could not rule out.
	Note string `json:"note"`
	// Tree is the check of the transparency tree (`web verify` on a
	// database only).
	Tree *TreeCheck `json:"tree,omitempty"`
	// Deep is the row-by-row check of the projections (`web verify
	// --deep`).
	Deep *DeepCheck `json:"deep,omitempty"`
	// Files is the check of the attached files (the /verify page's runs).
	Files *FilesCheck `json:"files,omitempty"`
}

// FilesCheck is the check of the files attached to tickets: how many
// distinct files were hashed, and each one missing or altered.
type FilesCheck struct {
	Checked  int      `json:"checked"`
	Problems []string `json:"problems,omitempty"`
}

// DeepCheck is what `web verify --deep` found: the projections rebuilt
// from the log compared with the live tables.
type DeepCheck struct {
	events.DeepReport
	Note string `json:"note,omitempty"`
}

// CheckpointStatus is the transparency log on /verify: its origin line,
// verifier key and latest signed checkpoint (size, root in base64, time).
type CheckpointStatus struct {
	Origin   string `json:"origin"`
	VKey     string `json:"vkey"`
	Size     *int64 `json:"size,omitempty"`
	Root     string `json:"root,omitempty"`
	SignedAt string `json:"signed_at,omitempty"`
	// Cosigned is the largest checkpoint tlog witnesses cosigned.
	Cosigned *CosignedStatus `json:"cosigned,omitempty"`
}

// CosignedStatus is the latest checkpoint cosigned by tlog witnesses: its
// size and each witness's name and cosignature time.
type CosignedStatus struct {
	Size      int64           `json:"size"`
	Witnesses []CosignedByOne `json:"witnesses"`
}

// CosignedByOne is one witness's cosignature.
type CosignedByOne struct {
	Name string `json:"name"`
	At   string `json:"at"`
}

// TreeCheck is what the check of the transparency tree found: the root
// recomputed from the braid hashes of the events checked, and whether the
// stored hashes agree.
type TreeCheck struct {
	Size int64  `json:"size"`
	Root string `json:"root"` // base64, as in a checkpoint
	OK   bool   `json:"ok"`
	// FirstWrongIndex is the first stored hash that differs, when one does.
	FirstWrongIndex *int64 `json:"first_wrong_index,omitempty"`
	Problem         string `json:"problem,omitempty"`
}

// AddTreeCheck records c in the report; a tree that disagrees with the
// braid makes the report broken at the event whose leaf is wrong (or the
// last event checked), unless a failure at a lower position is named.
func (v *VerifyReport) AddTreeCheck(c tlog.Check) {
	t := &TreeCheck{Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]), OK: c.OK, Problem: c.Problem}
	if c.Index >= 0 {
		t.FirstWrongIndex = &c.Index
	}
	v.Tree = t
	if c.OK {
		return
	}
	pos := c.Position
	if pos == 0 {
		pos = c.Size
	}
	if v.Failure == nil || pos < v.Failure.Position {
		v.Intact = false
		v.Failure = &events.Failure{Position: pos, Reason: "transparency tree: " + c.Problem}
	}
}

// NewVerifyReport combines a verification of the braid with the anchor
// checks: the database is intact only if both are, and the failure shown is
// the one at the lowest position.
func NewVerifyReport(r events.Report, anchors []AnchorCheck) VerifyReport {
	if anchors == nil {
		anchors = []AnchorCheck{}
	}
	v := VerifyReport{Intact: r.Intact, Events: r.Events, Head: events.Hex(r.Head.Hash), Failure: r.Failure, Anchors: anchors, Erased: r.Erased}
	var last *AnchorCheck
	for i := range anchors {
		a := &anchors[i]
		if !a.OK && (v.Failure == nil || a.Position < v.Failure.Position) {
			v.Intact = false
			v.Failure = &events.Failure{Position: a.Position, Reason: a.Problem}
		}
		if a.OK && (last == nil || a.Position > last.Position) {
			last = a
		}
	}
	switch {
	case !v.Intact:
		v.Note = ""
	case len(anchors) == 0:
		v.Note = "checked against the log alone and no anchor: a log rewritten with freshly computed hashes would pass; anchor the head with `web anchor`"
	case last.Position < r.Head.Position:
		v.Note = fmt.Sprintf("checked against %d anchor(s), the latest at position %d (witness %s); the head (position %d) is not anchored: a tail rewritten after position %d with fresh hashes would pass; anchor it with `web anchor`",
			len(anchors), last.Position, last.Witness, r.Head.Position, last.Position)
	default:
		v.Note = fmt.Sprintf("checked against %d anchor(s); the head (position %d) is anchored (witness %s)", len(anchors), last.Position, last.Witness)
	}
	return v
}

// VerifyRun is one finished check, as the /verify page shows it.
type VerifyRun struct {
	Report VerifyReport
	At     time.Time     // when it started
	Took   time.Duration // how long it took
	Err    error         // the check could not run
	// Full: this run checked the log from position 1; otherwise it read
	// only the events after the previous run's (From on).
	Full bool
	From int64 // the first position this run read
	Read int64 // how many events this run read
	// Checked is the log position the verdict covers: the last event
	// checked (for a broken log, the failure's position, which no append
	// can mend).
	Checked int64
}

// DefaultFullEvery is how often, at most, a Monitor checks the whole log
// again from position 1 unless its FullEvery says otherwise.
const DefaultFullEvery = 10 * time.Minute

// Monitor checks the braid in the background, one run at a time, and keeps
// the latest result. It keeps its checker between runs, so a run reads only
// the events appended since the one before; nothing runs while the head and
// the recorded anchors stay as they were; and the whole log is checked
// again from position 1 at most every FullEvery (to catch an old event
// changed in place), however often visitors ask. It reads only through the
// read pool, so it never waits for the writer, and a request never waits
// for a whole run.
type Monitor struct {
	ctx     context.Context
	read    events.Querier
	anchors AnchorFunc
	log     *slog.Logger
	maxAge  time.Duration
	now     func() time.Time
	// FullEvery is how often at most the whole log is checked again from
	// position 1 (DefaultFullEvery when 0). Set it before the first Kick.
	FullEvery time.Duration
	// Tree, when set, checks the transparency tree from the tree head the
	// run before verified (tlog.VerifySince): O(log n) plus the events
	// appended since, so an incremental run checks the tree too; a full
	// run starts it from the empty tree. Set it before the first Kick.
	Tree func(ctx context.Context, from tlog.Head) (tlog.SinceCheck, error)
	// OnRun, when set, hears of every finished run (metrics, the record
	// `web doctor` reads), after the run's waiters are released. Set it
	// before the first Kick.
	OnRun func(VerifyRun)

	mu       sync.Mutex
	running  chan struct{} // closed when the current run ends; nil when idle
	last     *VerifyRun
	chk      *events.Checker // the checker's state after the latest run
	fullAt   time.Time       // when the latest full run started
	seen     logState        // what the latest run covered
	anchored []AnchorCheck   // the anchors' checks, redone when they change
	tree     tlog.Head       // the tree head the latest run verified
	files    FilesCheck      // the attached files checked so far (since the latest full run)
	polled   time.Time       // when Verdict last looked at the log
	runs     int64
}

// logState is what decides whether a new run is needed: the head and the
// recorded anchors.
type logState struct {
	head    int64
	anchors int64 // how many anchors, and the newest one's id
	lastID  int64
}

// NewMonitor returns a monitor that verifies the log readable through read
// and, when anchors is not nil, checks the anchors with it. Runs stop when
// ctx ends. Verdict (the frame of every page) looks at the log at most once
// per maxAge; /verify looks every time.
func NewMonitor(ctx context.Context, read events.Querier, anchors AnchorFunc, log *slog.Logger, maxAge time.Duration) *Monitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{ctx: ctx, read: read, anchors: anchors, log: log, maxAge: maxAge, now: time.Now}
}

// Latest returns the latest finished run, if any.
func (m *Monitor) Latest() (VerifyRun, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return VerifyRun{}, false
	}
	return *m.last, true
}

// Runs returns how many runs have started.
func (m *Monitor) Runs() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs
}

// Verdict returns the latest finished run, if any, for the frame of every
// page, and starts a run in the background when one is due (looking at the
// log at most once per maxAge).
func (m *Monitor) Verdict() (VerifyRun, bool) {
	m.mu.Lock()
	due := m.running == nil && m.now().Sub(m.polled) >= m.maxAge
	if due {
		m.polled = m.now()
	}
	m.mu.Unlock()
	if due {
		m.Kick()
	}
	return m.Latest()
}

func (m *Monitor) fullEvery() time.Duration {
	if m.FullEvery > 0 {
		return m.FullEvery
	}
	return DefaultFullEvery
}

func (m *Monitor) state() (logState, error) {
	var st logState
	err := m.read.QueryRowContext(m.ctx, `SELECT (SELECT COALESCE(MAX(position), 0) FROM events),
		(SELECT COUNT(*) FROM anchors), (SELECT COALESCE(MAX(id), 0) FROM anchors)`).Scan(&st.head, &st.anchors, &st.lastID)
	return st, err
}

// Kick starts a run unless one is running or none is due: a run is due
// when the head or the recorded anchors changed since the latest run, or
// the latest full run is FullEvery old. It returns a channel closed when
// the current run (started now or before) ends, or nil when none was
// needed.
func (m *Monitor) Kick() <-chan struct{} {
	m.mu.Lock()
	if r := m.running; r != nil {
		m.mu.Unlock()
		return r
	}
	m.mu.Unlock()
	st, err := m.state() // outside the lock: a slow read holds up no one
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running != nil {
		return m.running
	}
	// A head lower than the one checked means events went missing: only a
	// full run can say where.
	full := m.last == nil || m.chk == nil || m.now().Sub(m.fullAt) >= m.fullEvery() || (err == nil && st.head < m.seen.head)
	if !full && err == nil && st == m.seen {
		return nil
	}
	done := make(chan struct{})
	m.running = done
	m.runs++
	chk, anchored, tree := m.chk, m.anchored, m.tree
	if full {
		chk, anchored, tree = events.NewChecker(), nil, tlog.Head{Root: tlog.EmptyRoot}
		m.fullAt = m.now()
	} else if st.anchors != m.seen.anchors || st.lastID != m.seen.lastID {
		anchored = nil
	}
	go m.run(done, chk, anchored, tree, full, st)
	return done
}

// run continues chk from where it stopped and checks the anchors again
// unless anchored holds their still-valid checks.
func (m *Monitor) run(done chan struct{}, chk *events.Checker, anchored []AnchorCheck, tree tlog.Head, full bool, st logState) {
	start := m.now()
	from := chk.Report().Head.Position + 1
	before := chk.Report().Events
	run := VerifyRun{At: start, Full: full, From: from}
	rep, err := events.Continue(m.ctx, m.read, chk)
	if err == nil && anchored == nil && m.anchors != nil {
		anchored, err = m.anchors(m.ctx)
	}
	if err != nil {
		run.Err = err
		m.log.Error("verify", slog.Any("err", err))
	} else {
		run.Report = NewVerifyReport(rep, anchored)
		if m.Tree != nil && rep.Intact {
			tree = m.treeCheck(tree, &run.Report)
		}
		if rep.Intact {
			err = m.filesCheck(&run, full)
		}
	}
	if err != nil && run.Err == nil {
		run.Err = err
		m.log.Error("verify", slog.Any("err", err))
	} else if err == nil {
		run.Read = rep.Events - before
		run.Checked = rep.Head.Position
		if rep.Failure != nil {
			run.Read++ // the event that failed was read too
			run.Checked = rep.Failure.Position
		}
	}
	run.Took = m.now().Sub(start)
	m.mu.Lock()
	m.last = &run
	m.running = nil
	if err == nil {
		if run.Report.Files != nil {
			m.files = *run.Report.Files
		}
		m.chk, m.anchored, m.tree = chk, anchored, tree
		if anchored == nil {
			m.anchored = []AnchorCheck{}
		}
		m.seen = logState{head: rep.Head.Position, anchors: st.anchors, lastID: st.lastID}
		if rep.Failure != nil {
			m.seen.head = st.head // nothing after a failure is read: only a full run looks again
		}
	} else {
		m.chk = nil // start again from position 1
	}
	m.mu.Unlock()
	close(done)
	if m.OnRun != nil {
		m.OnRun(run)
	}
}

// filesCheck hashes the files attached to tickets: all of them on a full
// run, those attached since the run before otherwise (a file's bytes are
// stored once, under their hash, and never rewritten by Braid; what was
// found wrong stays wrong until a full run looks again). A missing or
// altered file fails the check, as `web verify` does.
func (m *Monitor) filesCheck(run *VerifyRun, full bool) error {
	m.mu.Lock()
	fc := m.files
	m.mu.Unlock()
	if full {
		fc = FilesCheck{}
	}
	fc.Problems = slices.Clone(fc.Problems)
	n, problems, err := attach.CheckFrom(m.ctx, m.read, run.From)
	if err != nil {
		return err
	}
	fc.Checked += n
	for _, p := range problems {
		fc.Problems = append(fc.Problems, p.String())
	}
	run.Report.Files = &fc
	if len(fc.Problems) > 0 && run.Report.Intact {
		run.Report.Intact, run.Report.Note = false, ""
		run.Report.Failure = &events.Failure{Position: firstPosition(problems, run.From), Reason: strings.Join(fc.Problems, "; ")}
	}
	return nil
}

// firstPosition is the position of the first problem found now, or from
// when the problems were all found by an earlier run.
func firstPosition(problems []attach.Problem, from int64) int64 {
	if len(problems) > 0 {
		return problems[0].Position
	}
	return from
}

// treeCheck checks the tree from the head the run before verified and
// adds the result to rep; it returns the head to start from next time.
func (m *Monitor) treeCheck(from tlog.Head, rep *VerifyReport) tlog.Head {
	c, err := m.Tree(m.ctx, from)
	if err != nil {
		m.log.Error("verify the tree", slog.Any("err", err))
		return from
	}
	if c.Consistent {
		rep.Tree = &TreeCheck{Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]), OK: true}
		return tlog.Head{Size: c.Size, Root: c.Root}
	}
	if !c.Inconsistent && c.Position == 0 {
		return from // no tree stored yet: nothing to say
	}
	pos := c.Position
	if pos == 0 {
		pos = max(from.Size, 1)
	}
	rep.Tree = &TreeCheck{Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]), Problem: c.Problem}
	if rep.Failure == nil || pos < rep.Failure.Position {
		rep.Intact, rep.Note = false, ""
		rep.Failure = &events.Failure{Position: pos, Reason: "transparency tree: " + c.Problem}
	}
	return from
}

// VerifyStatus is GET /verify as JSON: the latest report (the shape of
// `web verify --json`) and how far it reaches.
type VerifyStatus struct {
	VerifyReport
	// CheckedPosition is the log position the verdict covers.
	CheckedPosition int64 `json:"checked_position"`
	// CheckedAt is when that check started (RFC 3339, UTC).
	CheckedAt string `json:"checked_at"`
	// HeadPosition is the log's head now.
	HeadPosition int64 `json:"head_position"`
	// Current: the verdict covers the head (a broken braid stays broken,
	// so a failure is always current).
	Current bool `json:"current"`
	// Replica is replication's state (serve --replicate or --follow).
	Replica *ReplicaStatus `json:"replica,omitempty"`
	// Checkpoint is the log's checkpoint signer and its latest checkpoint.
	Checkpoint *CheckpointStatus `json:"checkpoint,omitempty"`
	// DeepCheck is the last recorded `web verify --deep`, when one ran.
	DeepCheck *DeepCheckStatus `json:"deep_check,omitempty"`
}

// DeepCheckStatus is the last recorded deep check of the projections.
type DeepCheckStatus struct {
	RanAt   string `json:"ran_at"` // RFC 3339, UTC
	Head    int64  `json:"head"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	TookMS  int64  `json:"took_ms"`
}

// ago says how long ago t was, roughly, for people.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// VerifyPage answers GET /verify: the latest check of the braid and the
// anchors, starting a new one in the background when one is due. A run
// usually reads only what was appended since the one before, so a request
// waits a moment for it; none waits longer, and a result that does not
// reach the head says how old it is.
func VerifyPage(env *Env, m *Monitor) echo.HandlerFunc {
	return func(c echo.Context) error {
		done := m.Kick()
		if done != nil {
			select {
			case <-done:
			case <-time.After(time.Second):
			case <-c.Request().Context().Done():
				return c.Request().Context().Err()
			}
		}
		run, ok := m.Latest()
		if !ok && done != nil {
			select {
			case <-done:
				run, ok = m.Latest()
			case <-time.After(time.Second):
			case <-c.Request().Context().Done():
				return c.Request().Context().Err()
			}
		}
		running := false
		if done != nil {
			select {
			case <-done:
			default:
				running = true
			}
		}
		if ok && run.Err != nil {
			return fmt.Errorf("verify: %w", run.Err)
		}
		var cp *CheckpointStatus
		if t := env.Transparency; t != nil {
			cp = &CheckpointStatus{Origin: t.Origin, VKey: t.VKey}
			latest, ok, err := tlog.Latest(c.Request().Context(), env.DB.Read)
			if err != nil {
				return err
			}
			if ok {
				cp.Size, cp.Root, cp.SignedAt = &latest.Size, base64.StdEncoding.EncodeToString(latest.Root[:]), latest.SignedAt.UTC().Format(time.RFC3339)
			}
			size, by, ok, err := anchor.LatestCosigned(c.Request().Context(), env.DB.Read)
			if err != nil {
				return err
			}
			if ok {
				cp.Cosigned = &CosignedStatus{Size: size}
				for _, b := range by {
					cp.Cosigned.Witnesses = append(cp.Cosigned.Witnesses, CosignedByOne{Name: b.Witness, At: b.At})
				}
			}
		}
		var deep *DeepCheckStatus
		if d, ok, err := events.LatestDeepCheck(c.Request().Context(), env.DB.Read); err != nil {
			return err
		} else if ok {
			deep = &DeepCheckStatus{RanAt: d.RanAt.UTC().Format(time.RFC3339), Head: d.Head, OK: d.OK, Problem: d.Problem, TookMS: d.Took.Milliseconds()}
		}
		head := run.Checked
		if env.Writer != nil {
			head = env.Writer.Head().Position
		}
		current := ok && (!run.Report.Intact || run.Checked >= head)
		if WantsJSON(c) {
			if !ok {
				return c.JSON(http.StatusAccepted, map[string]any{"checking": true, "head_position": head, "current": false})
			}
			var rs *ReplicaStatus
			if env.Replica != nil {
				s := env.Replica.Now()
				rs = &s
			}
			return c.JSON(http.StatusOK, VerifyStatus{VerifyReport: run.Report, CheckedPosition: run.Checked,
				CheckedAt: run.At.UTC().Format(time.RFC3339), HeadPosition: head, Current: current, Checkpoint: cp, DeepCheck: deep, Replica: rs})
		}
		v := templates.VerifyView{Checked: ok, Running: running, HeadPosition: head, Current: current}
		if cp != nil {
			v.Log = &templates.VerifyLog{Origin: cp.Origin, VKey: cp.VKey, Signed: cp.Size != nil, Root: cp.Root, SignedAt: cp.SignedAt}
			if cp.Size != nil {
				v.Log.Size = *cp.Size
			}
			if cs := cp.Cosigned; cs != nil {
				v.Log.Cosigned = &templates.VerifyCosigned{Size: cs.Size}
				for _, w := range cs.Witnesses {
					v.Log.Cosigned.Witnesses = append(v.Log.Cosigned.Witnesses, [2]string{w.Name, w.At})
				}
			}
		}
		if deep != nil {
			at, _ := time.Parse(time.RFC3339, deep.RanAt)
			v.Deep = &templates.VerifyDeep{OK: deep.OK, Problem: deep.Problem, Head: deep.Head, At: deep.RanAt, Ago: ago(time.Since(at)),
				Took: (time.Duration(deep.TookMS) * time.Millisecond).String()}
		}
		if ok {
			r := run.Report
			v.Intact, v.Events, v.Head, v.Note, v.Erased = r.Intact, r.Events, r.Head, r.Note, r.Erased
			if r.Failure != nil {
				v.FailPosition, v.FailReason = r.Failure.Position, r.Failure.Reason
			}
			// A run from position 1 checked everything, full or not.
			v.CheckedPosition, v.Full, v.From = run.Checked, run.Full || run.From <= 1, run.From
			v.FullEvery = strings.TrimSuffix(strings.TrimSuffix(m.fullEvery().String(), "0s"), "0m")
			v.Took = run.Took.Round(10 * time.Microsecond).String()
			v.At = run.At.UTC().Format(time.RFC3339)
			v.Ago = ago(time.Since(run.At))
			if f := r.Files; f != nil {
				v.Files, v.FilesChecked = f.Checked, true
			}
			if t := r.Tree; t != nil && t.OK {
				v.Tree = &templates.VerifyTree{Size: t.Size, Root: t.Root}
			}
			for _, a := range r.Anchors {
				v.Anchors = append(v.Anchors, templates.VerifyAnchor{ID: a.ID, Position: a.Position, Witness: a.Witness,
					Hash: a.Hash, AnchoredAt: a.AnchoredAt, OK: a.OK, Problem: a.Problem, Receipt: a.Receipt})
			}
		}
		return Render(c, http.StatusOK, templates.Verify(env.Page(c, "Verify", "verify"), v))
	}
}
