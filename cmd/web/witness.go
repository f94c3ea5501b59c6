package main

import (
	"context"
	"flag"
	"math/big"

	"braid/internal/anchor"
)

// witnessFlags are the flags that name and reach a witness; anchor, serve
// and verify share them.
type witnessFlags struct {
	fs       *flag.FlagSet
	witness  *string
	tsaURL   *string
	tsaRoots *string
	rpcURL   *string
	keyFile  *string
	chainID  *uint64
	tlog     *tlogFlags
}

func addWitnessFlags(fs *flag.FlagSet) *witnessFlags {
	return &witnessFlags{fs: fs,
		witness:  fs.String("witness", "", "who witnesses the head: rfc3161 (a timestamp authority), evm (a chain) or tlog (C2SP tlog witnesses cosigning the signed checkpoint)"),
		tsaURL:   fs.String("tsa-url", "", "rfc3161: URL of the timestamp authority"),
		tsaRoots: fs.String("tsa-roots", "", "rfc3161: PEM file of trusted roots; receipts are checked against them"),
		rpcURL:   fs.String("rpc-url", "", "evm: JSON-RPC URL of a node"),
		keyFile:  fs.String("key-file", "", "evm: file holding the hex private key that sends the transaction"),
		chainID:  fs.Uint64("chain-id", 0, "evm: refuse unless the node is on this chain (0: any)"),
		tlog:     addTlogFlags(fs),
	}
}

// anchoring builds the witness that anchors (it needs --tsa-url, or
// --rpc-url and --key-file). close releases what it holds.
func (wf *witnessFlags) anchoring(ctx context.Context) (w anchor.Witness, close func(), err error) {
	set := map[string]bool{}
	wf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	only := func(w string, names ...string) error {
		for _, n := range names {
			if set[n] {
				return fail(exitFailed, "--%s does not go with --witness %s", n, w)
			}
		}
		return nil
	}
	close = func() {}
	switch *wf.witness {
	case anchor.RFC3161Name:
		if err := only(*wf.witness, "rpc-url", "key-file", "chain-id", "witness-url", "witness-key", "witness-quorum"); err != nil {
			return nil, close, err
		}
		if *wf.tsaURL == "" {
			return nil, close, fail(exitFailed, "--witness rfc3161 needs --tsa-url")
		}
		rw := &anchor.RFC3161{URL: *wf.tsaURL}
		if *wf.tsaRoots != "" {
			roots, err := anchor.LoadRoots(*wf.tsaRoots)
			if err != nil {
				return nil, close, fail(exitFailed, "%s", errMessage(err))
			}
			rw.Roots = roots
		}
		return rw, close, nil
	case anchor.EVMName:
		if err := only(*wf.witness, "tsa-url", "tsa-roots", "witness-url", "witness-key", "witness-quorum"); err != nil {
			return nil, close, err
		}
		if *wf.rpcURL == "" || *wf.keyFile == "" {
			return nil, close, fail(exitFailed, "--witness evm needs --rpc-url and --key-file")
		}
		key, err := anchor.LoadKey(*wf.keyFile)
		if err != nil {
			return nil, close, fail(exitFailed, "%s", errMessage(err))
		}
		client, err := anchor.DialEVM(ctx, *wf.rpcURL)
		if err != nil {
			return nil, close, fail(exitFailed, "%v", err)
		}
		ew := &anchor.EVM{Client: client, Key: key}
		if *wf.chainID != 0 {
			ew.ChainID = new(big.Int).SetUint64(*wf.chainID)
		}
		return ew, client.Close, nil
	case anchor.TlogName:
		if err := only(*wf.witness, "tsa-url", "tsa-roots", "rpc-url", "key-file", "chain-id"); err != nil {
			return nil, close, err
		}
		p, err := wf.tlog.policy()
		return p, close, err
	case "":
		return nil, close, fail(exitFailed, "--witness is required: rfc3161, evm or tlog")
	default:
		return nil, close, fail(exitFailed, "unknown --witness %q: want rfc3161, evm or tlog", *wf.witness)
	}
}

// checkers builds the witnesses that can check stored receipts: rfc3161
// with --tsa-roots, evm with --rpc-url, tlog always (offline, once bound). Receipts of other witnesses are
// listed with their hash checked against the log and the receipt unchecked.
func (wf *witnessFlags) checkers(ctx context.Context) (map[string]anchor.Witness, func(), error) {
	out := map[string]anchor.Witness{}
	close := func() {}
	// tlog receipts are checked offline; bindWitnesses gives the checker
	// the database and the log's key.
	keys, err := wf.tlog.trusted()
	if err != nil {
		return nil, close, err
	}
	out[anchor.TlogName] = &anchor.TlogChecker{Keys: keys}
	if *wf.tsaRoots != "" {
		roots, err := anchor.LoadRoots(*wf.tsaRoots)
		if err != nil {
			return nil, close, fail(exitFailed, "%s", errMessage(err))
		}
		out[anchor.RFC3161Name] = &anchor.RFC3161{URL: *wf.tsaURL, Roots: roots}
	}
	if *wf.rpcURL != "" {
		client, err := anchor.DialEVM(ctx, *wf.rpcURL)
		if err != nil {
			return nil, close, fail(exitFailed, "%v", err)
		}
		ew := &anchor.EVM{Client: client}
		if *wf.chainID != 0 {
			ew.ChainID = new(big.Int).SetUint64(*wf.chainID)
		}
		out[anchor.EVMName] = ew
		close = client.Close
	}
	return out, close, nil
}
