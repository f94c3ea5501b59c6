package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/importer"
)

const importIssuesSynopsis = "import-issues [--db PATH] --from github|gitea [--project SLUG] [--as ADMIN_USERNAME] FILE"

// importIssuesCmd loads issues and comments exported from GitHub's or
// Gitea's REST API (docs/import.md). The whole file is read and checked
// before anything is appended: a malformed one exits 2 with one line on
// stderr. Running it again appends nothing twice.
func importIssuesCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "import-issues", importIssuesSynopsis)
	from := fs.String("from", "", "the tracker the file comes from: github or gitea")
	project := fs.String("project", "", "the project the tickets open in (default: the default project)")
	as := fs.String("as", "", "the site admin the import is made by (default: system)")
	var file string
	if len(args) > 0 && !isFlag(args[0]) && args[0] != "-h" && args[0] != "--help" {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	if file == "" {
		return fail(exitFailed, "name the file: web %s", importIssuesSynopsis)
	}
	if _, ok := importer.Sources[*from]; !ok {
		return fail(exitFailed, "--from %q: use github or gitea", *from)
	}
	f, err := os.Open(file)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer f.Close()
	x, err := importer.Parse(f, *from)
	if err != nil {
		return fail(exitFailed, "%s: %s", file, errMessage(err))
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return fail(exitFailed, "%v (stop the site first)", err)
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	actor := auth.System
	if *as != "" {
		id, err := auth.IDByUsername(ctx, a.db.Read, *as)
		if err != nil {
			return fail(exitFailed, "--as %s: %s", *as, errMessage(err))
		}
		if ok, err := auth.IsAdmin(ctx, a.db.Read, id); err != nil {
			return fail(exitFailed, "%v", err)
		} else if !ok {
			return fail(exitFailed, "--as %s: not a site admin", *as)
		}
		actor = id
	}
	im := a.importer()
	rep, err := im.Run(ctx, x, importer.Options{Project: *project, Actor: actor})
	for _, n := range rep.Notes {
		fmt.Fprintf(e.stderr, "web import-issues: %s\n", n)
	}
	if err != nil {
		if errs.Code(err) == errs.NotFound || errs.Code(err) == errs.Invalid {
			return fail(exitFailed, "%s", errMessage(err))
		}
		return fail(exitFailed, "%v (what was appended stays; run it again to go on)", err)
	}
	fmt.Fprintf(e.stdout, "%d new: %d tickets, %d comments, %d people, %d assigned, %d closed (from %s, %d issues)\n",
		rep.New(), rep.Tickets, rep.Comments, rep.People, rep.Assigned, rep.Closed, x.Repo, len(x.Issues))
	return nil
}

func (a *app) importer() *importer.Importer {
	return &importer.Importer{DB: a.db, Writer: a.writer, Registry: a.reg, Types: a.types.importer, Tickets: a.types.tickets}
}

// adminClaim is `web admin claim IMPORTED REAL`: the real person stands
// for the imported one from now on (person_claimed, actor system).
func adminClaim(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "admin claim", "admin claim [--db PATH] IMPORTED_USERNAME REAL_USERNAME")
	var names []string
	for len(args) > 0 && !isFlag(args[0]) && args[0] != "-h" && args[0] != "--help" {
		names, args = append(names, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	names = append(names, fs.Args()...)
	if len(names) != 2 {
		return fail(exitFailed, "name two people: web admin claim IMPORTED_USERNAME REAL_USERNAME")
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return fail(exitFailed, "%v (stop it first, or use the admin page at /admin)", err)
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	var ids [2]string
	for i, n := range names {
		if ids[i], err = auth.IDByUsername(ctx, a.db.Read, n); err != nil {
			return fail(exitBroken, "there is nobody called %q (web admin list shows who there is)", n)
		}
	}
	if err := a.importer().Claim(ctx, auth.System, ids[0], ids[1], events.NewID()); err != nil {
		return fail(exitBroken, "%s", errMessage(err))
	}
	fmt.Fprintf(e.stdout, "%s is now shown as %s (person_claimed, actor system).\n", names[0], names[1])
	return nil
}
