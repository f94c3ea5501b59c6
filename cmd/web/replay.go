package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"braid/internal/events"
)

func replay(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "replay", "replay [--db PATH] [--batch N]")
	batch := fs.Int("batch", 20000, "events applied per commit of the scratch database (1 to 1000000)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 1_000_000 {
		return fail(exitFailed, "--batch %d: want a number from 1 to 1000000", *batch)
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	log, err := e.logger(slog.LevelWarn)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, *dbPath, log)
	if err != nil {
		return err
	}
	defer a.Close()

	opt := events.ReplayOptions{Batch: *batch, Logger: log}
	var bar *progressbar.ProgressBar
	if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions64(a.writer.Head().Position,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription("replaying"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		opt.Progress = func(done, total int64) {
			if total > bar.GetMax64() {
				bar.ChangeMax64(total)
			}
			bar.Set64(min(done, bar.GetMax64()))
		}
	}
	res, err := events.Replay(ctx, a.db, a.reg, a.writer, opt)
	if bar != nil {
		bar.Exit()
		fmt.Fprintln(e.stdout)
	}
	var broken *events.BrokenError
	if errors.As(err, &broken) {
		return fail(exitBroken, "%v; nothing was changed", broken)
	}
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	// The transparency tree is derived data too: recompute its stored
	// hashes from the braid hashes, in the writer's transaction.
	if err := a.writer.Exclusive(ctx, a.tree.Rebuild); err != nil {
		return fail(exitFailed, "rebuild the transparency tree: %v", err)
	}
	names := strings.Join(res.Projections, ", ")
	if names == "" {
		names = "(none registered)"
	}
	rate := float64(res.Events) / res.Took.Seconds()
	fmt.Fprintf(e.stdout, "replayed %d events in %s (%.0f events/s); projections: %s\n",
		res.Events, res.Took.Round(time.Millisecond), rate, names)
	th := a.tree.Head()
	fmt.Fprintf(e.stdout, "rebuilt the transparency tree: %d leaves, root %s\n", th.Size, base64.StdEncoding.EncodeToString(th.Root[:]))
	return nil
}
