package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"braid/internal/events"
	"braid/internal/tlog"
	"braid/internal/web"
)

func verify(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "verify", "verify [--db PATH [--deep | --since CHECKPOINT [--vkey KEY]] [--witness-key VKEY --cosigned FILE] | --file EXPORT | --bundle PROOF [--vkey KEY] [--cosigned-by WITNESS-VKEY]...] [--json]")
	file := fs.String("file", "", "check this export (JSON Lines) instead of the database; no database needed")
	bundle := fs.String("bundle", "", "check this proof bundle (GET /tickets/{id}/proof) offline instead of the database")
	vkey := fs.String("vkey", "", "with --bundle, tlog receipts and --cosigned: the log's verifier key (as web key prints it, or the site's /verify page shows it); default the one the bundle carries, which proves nothing about who signed. With --since: default the local log key's (--log-key)")
	since := fs.String("since", "", "check only what changed since this signed checkpoint (a file saved from GET /checkpoint, - for standard input): its signature, the tree's consistency with it, and the events after it")
	kf := addLogKeyFlags(fs, e, dbPath)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	deep := fs.Bool("deep", false, "also rebuild every projection from the log into scratch files and compare them row by row with the live tables (takes as long as a replay; writes only a record of the check)")
	deepTmp := fs.String("deep-tmp", "", "with --deep: directory for the scratch files (default the system's temporary directory)")
	var witnesses stringsFlag
	fs.Var(&witnesses, "cosigned-by", "with --bundle: a witness's verifier key (cosignature/v1); the bundle's checkpoint must carry a valid cosignature by each one given (repeatable)")
	cosigned := fs.String("cosigned", "", "also check this cosigned checkpoint (a tlog receipt kept elsewhere) against the log's tree; needs --witness-key")
	wf := addWitnessFlags(fs) // --tsa-roots and --rpc-url check receipts
	if err := parse(fs, args); err != nil {
		return err
	}
	if *deep && (*file != "" || *bundle != "") {
		return fail(exitFailed, "--deep checks a database's projections: it goes with --db, not --file or --bundle")
	}
	if *since != "" && (*bundle != "" || *deep) {
		return fail(exitFailed, "--since checks a database against a kept checkpoint: it goes with --db alone, not --bundle or --deep")
	}
	if len(witnesses) > 0 && *bundle == "" {
		return fail(exitFailed, "--cosigned-by goes with --bundle")
	}
	if *bundle != "" {
		return verifyBundle(e, *bundle, *vkey, witnesses, *asJSON)
	}
	if *since != "" {
		if *file != "" {
			return fail(exitFailed, "--since checks a database (--db), not an export (--file)")
		}
		return verifySince(ctx, e, *dbPath, *since, *vkey, kf, *asJSON)
	}
	unavailable := false
	files := 0 // attachments hashed (attach_verify.go)
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
		logVKey, err := logVKeyFor(*vkey, *dbPath)
		if err != nil {
			return err
		}
		if err := bindWitnesses(checkers, db, logVKey); err != nil {
			return err
		}
		if *cosigned != "" {
			trusted, err := wf.tlog.trusted()
			if err != nil {
				return err
			}
			if err := checkCosignedFile(ctx, e, db, *cosigned, logVKey, trusted); err != nil {
				return err
			}
		}
		anchors, unav, err := checkAnchors(ctx, db, checkers)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		unavailable = unav
		rep = web.NewVerifyReport(r, anchors)
		if err := treeCheck(ctx, db, r, &rep); err != nil {
			return fail(exitFailed, "%v", err)
		}
		if files, err = attachCheck(ctx, db, &rep); err != nil {
			return fail(exitFailed, "%v", err)
		}
		what = *dbPath
		if *deep && rep.Intact {
			d, recorded, err := deepVerify(ctx, db, *deepTmp)
			if err != nil {
				return fail(exitFailed, "deep verify: %v", err)
			}
			rep.Deep = &web.DeepCheck{DeepReport: d}
			if !recorded {
				rep.Deep.Note = "not recorded: this database has no deep_checks table yet (start `web serve` once)"
			}
			if !d.OK {
				rep.Intact = false
				pos := d.Head
				if d.Broken != nil {
					pos = d.Broken.Position
				}
				rep.Failure = &events.Failure{Position: pos, Reason: d.Problem()}
			}
		}
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
		if files > 0 {
			fmt.Fprintf(e.stdout, "attachments: %d files, each present and its SHA-256 equal to the one its event carries\n", files)
		}
		if rep.Deep != nil {
			if rep.Deep.OK {
				fmt.Fprintln(e.stdout, deepLine(rep.Deep.DeepReport))
			}
			if rep.Deep.Note != "" {
				fmt.Fprintln(e.stdout, rep.Deep.Note)
			}
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
	if d := r.Deep; d != nil && !d.OK && d.Broken == nil {
		return fmt.Sprintf("projections differ from the log (at position %d): %s", d.Head, d.Problem())
	}
	if r.Intact {
		if r.Erased > 0 {
			return fmt.Sprintf("intact: %d events, head %s; %d payloads erased", r.Events, r.Head, r.Erased)
		}
		return fmt.Sprintf("intact: %d events, head %s", r.Events, r.Head)
	}
	return fmt.Sprintf("broken at position %d: %s", r.Failure.Position, strings.TrimSpace(r.Failure.Reason))
}

// verifyBundle checks a proof bundle offline: exit 0 when every event is
// in the signed tree, 1 when the bundle is refused, 2 when it cannot be
// read.
func verifyBundle(e env, path, vkey string, witnessKeys []string, asJSON bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	pinned := vkey != ""
	if !pinned {
		var b struct {
			VKey string `json:"vkey"`
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return fail(exitFailed, "%s: not a proof bundle: %v", path, err)
		}
		vkey = b.VKey
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fail(exitFailed, "verifier key %q: %v", vkey, err)
	}
	var witnesses []note.Verifier
	for _, k := range witnessKeys {
		w, err := tlog.NewCosignatureVerifier(k)
		if err != nil {
			return fail(exitFailed, "--cosigned-by: %v", err)
		}
		witnesses = append(witnesses, w)
	}
	c, err := tlog.VerifyBundle(data, v, witnesses...)
	if err != nil {
		return fail(exitFailed, "%s: %v", path, err)
	}
	msg := ""
	if !pinned {
		msg = "the signature was checked with the key the bundle carries, which anyone can replace: pass --vkey with the log's key (`web key`, or the site's /verify page) to know who signed"
	}
	if asJSON {
		out := map[string]any{"ok": c.OK, "origin": c.Origin, "size": c.Size, "root": base64.StdEncoding.EncodeToString(c.Root[:]),
			"events": c.Events, "problem": c.Problem, "cosigned_by": c.Cosigned, "position": c.Position, "key_pinned": pinned, "note": msg}
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return fail(exitFailed, "%v", err)
		}
	} else if c.OK {
		fmt.Fprintf(e.stdout, "intact: %d events, each in the tree of %s at size %d (root %s)\n", c.Events, c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
		if len(c.Cosigned) > 0 {
			fmt.Fprintf(e.stdout, "cosigned by %s\n", strings.Join(c.Cosigned, ", "))
		}
		fmt.Fprintln(e.stdout, "inclusion only: an event of the aggregate after the last one in the bundle would not show here")
		if msg != "" {
			fmt.Fprintln(e.stdout, msg)
		}
	}
	if !c.OK {
		return fail(exitBroken, "refused: %s", c.Problem)
	}
	return nil
}
