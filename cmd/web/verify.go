package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"braid/internal/events"
	"braid/internal/web"
)

func verify(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "verify", "verify [--db PATH | --file EXPORT] [--json]")
	file := fs.String("file", "", "check this export (JSON Lines) instead of the database; no database needed")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	wf := addWitnessFlags(fs) // --tsa-roots and --rpc-url check receipts
	if err := parse(fs, args); err != nil {
		return err
	}
	unavailable := false
	var rep web.VerifyReport
	var what string
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		defer f.Close()
		r, err := events.VerifyExport(f)
		if err != nil {
			return fail(exitFailed, "%s: %v", *file, err)
		}
		rep = web.NewVerifyReport(r, nil)
		if rep.Intact {
			rep.Note = "checked the file alone: a copy rewritten with freshly computed hashes would pass; compare its head with one you trust (an anchor receipt, or `web verify` on the live database)"
		}
		what = *file
	} else {
		db, err := openReadOnly(ctx, *dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		r, err := events.Verify(ctx, db.Read)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		checkers, closeC, err := wf.checkers(ctx)
		if err != nil {
			return err
		}
		defer closeC()
		anchors, unav, err := checkAnchors(ctx, db, checkers)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		unavailable = unav
		rep = web.NewVerifyReport(r, anchors)
		if err := treeCheck(ctx, db, r, &rep); err != nil {
			return fail(exitFailed, "%v", err)
		}
		what = *dbPath
	}

	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return fail(exitFailed, "%v", err)
		}
	} else {
		fmt.Fprintln(e.stdout, verdict(rep))
		fmt.Fprintf(e.stdout, "checked %s: %d events, every hash recomputed, every parent link, positions without gaps, versions without gaps per aggregate\n", what, rep.Events)
		if t := rep.Tree; t != nil {
			if t.OK {
				fmt.Fprintf(e.stdout, "transparency tree: %d leaves, root %s recomputed from the braid hashes and equal to the stored hashes' root\n", t.Size, t.Root)
			} else {
				fmt.Fprintf(e.stdout, "transparency tree: %s\n", t.Problem)
			}
		}
		for _, a := range rep.Anchors {
			state := "matches the log"
			if a.Receipt != "" {
				state += "; " + a.Receipt
			}
			if !a.OK {
				state = a.Problem
			}
			fmt.Fprintf(e.stdout, "anchor #%d at position %d (witness %s, %s): %s\n", a.ID, a.Position, a.Witness, a.AnchoredAt, state)
		}
		if rep.Note != "" {
			fmt.Fprintln(e.stdout, rep.Note)
		}
	}
	if !rep.Intact {
		return &exitError{code: exitBroken, err: errors.New(verdict(rep))}
	}
	if unavailable {
		return fail(exitFailed, "the braid is intact but a witness could not be reached to check its receipt")
	}
	return nil
}

// verdict is the first line of `web verify`.
func verdict(r web.VerifyReport) string {
	if r.Intact {
		return fmt.Sprintf("intact: %d events, head %s", r.Events, r.Head)
	}
	return fmt.Sprintf("broken at position %d: %s", r.Failure.Position, strings.TrimSpace(r.Failure.Reason))
}
