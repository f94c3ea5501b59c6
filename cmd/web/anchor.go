package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"braid/internal/anchor"
	"braid/internal/errs"
	"braid/internal/events"
)

// anchorCmd anchors the current head once: exit 0 anchored, 1 the witness
// refused, 2 could not run (flags, empty log, database, witness unreachable).
func anchorCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "anchor", "anchor --witness rfc3161 --tsa-url URL [--tsa-roots PEMFILE]\n"+
		"       web anchor --witness evm --rpc-url URL --key-file FILE [--chain-id N]\n"+
		"       web anchor --witness tlog --witness-url URL --witness-key VKEY [--witness-url URL --witness-key VKEY …] [--witness-quorum N]")
	wf := addWitnessFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	w, closeW, err := wf.anchoring(ctx)
	if err != nil {
		return err
	}
	defer closeW()

	db, err := openDB(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	head, err := events.ReadHead(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if head.Position == 0 {
		return fail(exitFailed, "nothing to anchor: the log in %s is empty", *dbPath)
	}
	bindAnchoring(w, db)
	if p, ok := w.(*anchor.TlogPolicy); ok {
		return anchorTlog(ctx, e, db, p, head)
	}
	r, err := w.Anchor(ctx, head)
	if anchor.Refused(err) {
		return fail(exitBroken, "witness refused: %s", errs.Message(err))
	}
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	a, err := anchor.Record(ctx, db.Aux, head, r, time.Now())
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(e.stdout, "anchored position %d hash %s with %s: %s\n",
		a.Head.Position, hex.EncodeToString(a.Head.Hash[:]), a.Receipt.Witness, a.Receipt.Summary())
	return nil
}

// errMessage is the message of err without its code prefix.
func errMessage(err error) string {
	if errs.Code(err) == errs.Internal {
		return err.Error()
	}
	return errs.Message(err)
}
