package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"braid/internal/events"
)

// Exporter writes a verified export of the log into Dir every Every and
// keeps the newest Keep of them.
type Exporter struct {
	Read  events.Querier // the log, read through the read pool
	Aux   events.Querier // where each run is recorded (ops_runs); nil: not recorded
	Dir   string
	Every time.Duration
	Keep  int
	Log   *slog.Logger
	Now   func() time.Time
	// Done, when set, hears of every run: when it ended and how.
	Done func(at time.Time, err error)
}

// exportName matches the files the exporter writes and so may prune:
// braid-<UTC time>-<position>.jsonl.
var exportName = regexp.MustCompile(`^braid-\d{8}T\d{6}(\.\d+)?Z-\d+\.jsonl$`)

// Run exports every x.Every until ctx ends; the first export is one
// interval after the start.
func (x *Exporter) Run(ctx context.Context) {
	t := time.NewTicker(x.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.Once(ctx)
		}
	}
}

// Once writes one export, verifies it, names it and prunes old ones,
// logging and recording the outcome. It returns the file written.
func (x *Exporter) Once(ctx context.Context) (string, error) {
	now := time.Now
	if x.Now != nil {
		now = x.Now
	}
	path, rep, err := x.export(ctx, now().UTC())
	at := now()
	run := Run{Kind: KindExport, At: at, OK: err == nil, Position: rep.Head.Position, Detail: filepath.Base(path)}
	if err != nil {
		run.Detail = err.Error()
		x.Log.Error("scheduled export failed", slog.String("dir", x.Dir), slog.Any("err", err))
	} else {
		x.Log.Info("scheduled export written and verified", slog.String("file", path),
			slog.Int64("events", rep.Events), slog.Int64("position", rep.Head.Position))
		if perr := x.prune(); perr != nil {
			x.Log.Warn("scheduled export: could not remove old exports", slog.Any("err", perr))
		}
	}
	if x.Aux != nil {
		if rerr := Record(ctx, x.Aux, run); rerr != nil {
			x.Log.Warn("scheduled export: could not record the run", slog.Any("err", rerr))
		}
	}
	if x.Done != nil {
		x.Done(at, err)
	}
	return path, err
}

// export writes the log to a temporary file in x.Dir, checks it with the
// code of `web verify --file`, and renames it into place only when intact.
func (x *Exporter) export(ctx context.Context, at time.Time) (string, events.Report, error) {
	var rep events.Report
	if err := os.MkdirAll(x.Dir, 0o750); err != nil {
		return "", rep, err
	}
	f, err := os.CreateTemp(x.Dir, ".braid-export-*.tmp")
	if err != nil {
		return "", rep, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename; else the export failed
	n, err := events.Export(ctx, x.Read, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", rep, fmt.Errorf("write export: %w", err)
	}
	if rep, err = verifyFile(tmp); err != nil {
		return "", rep, err
	}
	if rep.Events != n {
		return "", rep, fmt.Errorf("export holds %d events, %d were written", rep.Events, n)
	}
	path := filepath.Join(x.Dir, fmt.Sprintf("braid-%s-%d.jsonl", at.Format("20060102T150405.000000000Z"), rep.Head.Position))
	if err := os.Rename(tmp, path); err != nil {
		return "", rep, err
	}
	if d, err := os.Open(x.Dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return path, rep, nil
}

// verifyFile checks an export as `web verify --file` does.
func verifyFile(path string) (events.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return events.Report{}, err
	}
	defer f.Close()
	rep, err := events.VerifyExport(f)
	if err != nil {
		return rep, fmt.Errorf("verify export: %w", err)
	}
	if !rep.Intact {
		return rep, fmt.Errorf("export is broken at position %d: %s", rep.Failure.Position, rep.Failure.Reason)
	}
	return rep, nil
}

// prune removes all but the newest x.Keep exports the exporter wrote.
func (x *Exporter) prune() error {
	names, err := Exports(x.Dir)
	if err != nil || len(names) <= x.Keep {
		return err
	}
	var errs []error
	for _, n := range names[:len(names)-x.Keep] {
		if err := os.Remove(filepath.Join(x.Dir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Exports lists the scheduled exports in dir, oldest first (their names
// sort by time).
func Exports(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && exportName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
