package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"braid/internal/auth"
	"braid/internal/errs"
)

// adminCommands are the operator's subcommands of `web admin`.
var adminCommands = []struct{ name, synopsis, summary string }{
	{"list", "admin list [--db PATH]", "list people: username, display name, when they registered"},
	{"reset-password", "admin reset-password [--db PATH] [--base-url URL] [--expires-in 1h] USERNAME",
		"print a one-time link that sets a new password (and signs out every session of that person)"},
}

func adminUsage(e env) {
	fmt.Fprintln(e.stdout, "Usage: web admin COMMAND [flags]   (web admin COMMAND --help for its flags)")
	fmt.Fprintln(e.stdout, "\nOperator commands, run on the server's machine:")
	for _, c := range adminCommands {
		fmt.Fprintf(e.stdout, "  %-15s %s\n", c.name, c.summary)
	}
}

func adminCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		adminUsage(e)
		if len(args) == 0 {
			return fail(exitFailed, "name a command: list or reset-password")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "list":
		return adminList(ctx, e, args[1:])
	case "reset-password":
		return adminReset(ctx, e, args[1:])
	}
	return fail(exitFailed, "unknown admin command %q: use list or reset-password", args[0])
}

func adminList(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "admin list", adminCommands[0].synopsis)
	if err := parse(fs, args); err != nil {
		return err
	}
	db, err := openReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	people, err := auth.All(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tREGISTERED")
	for _, p := range people {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.DisplayName, p.RegisteredAt)
	}
	return tw.Flush()
}

func adminReset(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "admin reset-password", adminCommands[1].synopsis)
	base := fs.String("base-url", cmp.Or(e.getenv("BRAID_BASE_URL"), "http://127.0.0.1:8080"), "the site's address, for the printed link (env BRAID_BASE_URL)")
	ttl := fs.Duration("expires-in", time.Hour, "how long the link works")
	// The username may come before or after the flags.
	var user string
	if len(args) > 0 && !isFlag(args[0]) && args[0] != "-h" && args[0] != "--help" {
		user, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if user == "" && fs.NArg() > 0 {
		user = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	if user == "" {
		return fail(exitFailed, "name the person: web admin reset-password USERNAME")
	}
	if *ttl <= 0 || *ttl > 7*24*time.Hour {
		return fail(exitFailed, "--expires-in %s: want a duration from 1s to 168h", *ttl)
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	db, err := openDB(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	token, err := auth.IssueReset(ctx, db.Aux, user, time.Now(), *ttl)
	if err != nil {
		if errs.Code(err) == errs.NotFound {
			return fail(exitBroken, "there is nobody called %q (web admin list shows who there is)", user)
		}
		return fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(e.stdout, "%s/reset/%s\n", strings.TrimRight(*base, "/"), token)
	fmt.Fprintf(e.stderr, "A one-time link for %s, valid for %s: pass it on privately. Using it signs out every session of %s.\n", user, *ttl, user)
	return nil
}
