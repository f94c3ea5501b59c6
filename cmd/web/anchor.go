package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"math/big"
	"time"

	"braid/internal/anchor"
	"braid/internal/errs"
	"braid/internal/events"
)

// anchorCmd anchors the current head once: exit 0 anchored, 1 the witness
// refused, 2 could not run (flags, empty log, database, witness unreachable).
func anchorCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "anchor", "anchor --witness rfc3161 --tsa-url URL [--tsa-roots PEMFILE]\n"+
		"       web anchor --witness evm --rpc-url URL --key-file FILE [--chain-id N]")
	witness := fs.String("witness", "", "who witnesses the head: rfc3161 (a timestamp authority) or evm (a chain)")
	tsaURL := fs.String("tsa-url", "", "rfc3161: URL of the timestamp authority")
	tsaRoots := fs.String("tsa-roots", "", "rfc3161: PEM file of trusted roots; the reply is checked against them")
	rpcURL := fs.String("rpc-url", "", "evm: JSON-RPC URL of a node")
	keyFile := fs.String("key-file", "", "evm: file holding the hex private key that sends the transaction")
	chainID := fs.Uint64("chain-id", 0, "evm: refuse unless the node is on this chain (0: any)")
	if err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	only := func(w string, names ...string) error {
		for _, n := range names {
			if set[n] {
				return fail(exitFailed, "--%s does not go with --witness %s", n, w)
			}
		}
		return nil
	}

	var w anchor.Witness
	switch *witness {
	case anchor.RFC3161Name:
		if err := only(*witness, "rpc-url", "key-file", "chain-id"); err != nil {
			return err
		}
		if *tsaURL == "" {
			return fail(exitFailed, "--witness rfc3161 needs --tsa-url")
		}
		rw := &anchor.RFC3161{URL: *tsaURL}
		if *tsaRoots != "" {
			roots, err := anchor.LoadRoots(*tsaRoots)
			if err != nil {
				return fail(exitFailed, "%s", errMessage(err))
			}
			rw.Roots = roots
		}
		w = rw
	case anchor.EVMName:
		if err := only(*witness, "tsa-url", "tsa-roots"); err != nil {
			return err
		}
		if *rpcURL == "" || *keyFile == "" {
			return fail(exitFailed, "--witness evm needs --rpc-url and --key-file")
		}
		key, err := anchor.LoadKey(*keyFile)
		if err != nil {
			return fail(exitFailed, "%s", errMessage(err))
		}
		client, err := anchor.DialEVM(ctx, *rpcURL)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		defer client.Close()
		ew := &anchor.EVM{Client: client, Key: key}
		if *chainID != 0 {
			ew.ChainID = new(big.Int).SetUint64(*chainID)
		}
		w = ew
	case "":
		return fail(exitFailed, "--witness is required: rfc3161 or evm")
	default:
		return fail(exitFailed, "unknown --witness %q: want rfc3161 or evm", *witness)
	}

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
