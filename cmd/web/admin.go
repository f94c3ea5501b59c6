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
	{"list", "admin list [--db PATH]", "list people: username, display name, when they registered, their id"},
	{"reset-password", "admin reset-password [--db PATH] [--base-url URL] [--expires-in 1h] USERNAME",
		"print a one-time link that sets a new password (and signs out every session of that person)"},
	{"create-admin", "admin create-admin [--db PATH] USERNAME",
		"make a registered person a site admin (role_granted, actor system); the site must be stopped"},
	{"set-registration", "admin set-registration [--db PATH] open|invite|closed",
		"set who may register (registration_mode_set, actor system); the site must be stopped"},
	{"rename", "admin rename [--db PATH] OLD NEW",
		"change a person's username (username_changed, actor system); the old one stays reserved; the site must be stopped"},
	{"projects", "admin projects [--db PATH]", "list projects: slug, name, whether everyone signed in is a member, who holds which role"},
	{"grant", "admin grant [--db PATH] USERNAME PROJECT owner|member|reporter|viewer",
		"give a person a role in a project (project_role_granted, actor system); the site must be stopped"},
	{"revoke", "admin revoke [--db PATH] USERNAME PROJECT",
		"take a person's role in a project away (project_role_revoked, actor system); the site must be stopped"},
	{"claim", "admin claim [--db PATH] IMPORTED_USERNAME REAL_USERNAME",
		"show a real person for someone imported from another tracker (person_claimed, actor system); the site must be stopped"},
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
			return fail(exitFailed, "name a command: %s", adminNames())
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "list":
		return adminList(ctx, e, args[1:])
	case "reset-password":
		return adminReset(ctx, e, args[1:])
	case "projects":
		return adminProjects(ctx, e, args[1:])
	case "grant", "revoke":
		return adminGrant(ctx, e, args[1:], args[0] == "revoke")
	case "claim":
		return adminClaim(ctx, e, args[1:])
	case "create-admin":
		return adminCommand(ctx, e, args[1:], 2, "USERNAME", func(ctx context.Context, s *auth.Service, arg string) (string, error) {
			id, err := auth.IDByUsername(ctx, s.DB.Read, arg)
			if err != nil {
				return "", err
			}
			if err := s.Grant(ctx, auth.System, id, ""); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s is now a site admin (role_granted, actor system).", arg), nil
		})
	case "rename":
		// Two arguments: OLD NEW, passed to adminCommand as one "OLD NEW".
		var names, rest []string
		for i := 1; i < len(args); i++ {
			switch a := args[i]; {
			case a == "--db" && i+1 < len(args):
				rest = append(rest, a, args[i+1])
				i++
			case isFlag(a) || a == "-h" || a == "--help":
				rest = append(rest, a)
			default:
				names = append(names, a)
			}
		}
		if len(names) > 2 {
			return fail(exitFailed, "unexpected argument %q", names[2])
		}
		if len(names) == 1 {
			return fail(exitFailed, "name the new username too: web %s", adminCommands[4].synopsis)
		}
		if len(names) == 2 {
			rest = append([]string{names[0] + " " + names[1]}, rest...)
		}
		return adminCommand(ctx, e, rest, 4, "OLD NEW", func(ctx context.Context, s *auth.Service, arg string) (string, error) {
			old, name, _ := strings.Cut(arg, " ")
			id, err := s.RenameUser(ctx, old, name)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s is now %s (username_changed, actor system; id %s). They sign in with the new username; %s stays reserved for them.", old, name, id, old), nil
		})
	case "set-registration":
		return adminCommand(ctx, e, args[1:], 3, "MODE", func(ctx context.Context, s *auth.Service, arg string) (string, error) {
			mode, err := auth.ParseMode(arg)
			if err != nil {
				return "", errs.E(errs.Invalid, "%q: use open, invite or closed", arg)
			}
			if err := s.SetMode(ctx, auth.System, mode, ""); err != nil {
				return "", err
			}
			return fmt.Sprintf("Registration is now %s (registration_mode_set, actor system). A serve --registration flag overrides it while it runs.", mode), nil
		})
	}
	return fail(exitFailed, "unknown admin command %q: use %s", args[0], adminNames())
}

func adminNames() string {
	names := make([]string, len(adminCommands))
	for i, c := range adminCommands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// adminCommand runs an operator's command that appends to the log: one
// argument (the flags before or after it), the database locked as serve
// locks it (a second writer beside a running site would fork the braid),
// the writer started, act run as system.
func adminCommand(ctx context.Context, e env, args []string, i int, argName string, act func(context.Context, *auth.Service, string) (string, error)) error {
	c := adminCommands[i]
	fs, dbPath := newFlags(e, "admin "+c.name, c.synopsis)
	var arg string
	if len(args) > 0 && !isFlag(args[0]) && args[0] != "-h" && args[0] != "--help" {
		arg, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	rest := fs.Args()
	if arg == "" && len(rest) > 0 {
		arg, rest = rest[0], rest[1:]
		if err := parse(fs, rest); err != nil {
			return err
		}
		rest = fs.Args()
	}
	if len(rest) > 0 {
		return fail(exitFailed, "unexpected argument %q", rest[0])
	}
	if arg == "" {
		return fail(exitFailed, "name the %s: web %s", strings.ToLower(argName), c.synopsis)
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return fail(exitFailed, "%s (stop it first, or use the admin page at /admin)", strings.TrimPrefix(err.Error(), ""))
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	msg, err := act(ctx, &auth.Service{DB: a.db, Writer: a.writer, Types: a.types.users, Projects: a.types.access}, arg)
	if err != nil {
		switch errs.Code(err) {
		case errs.NotFound:
			return fail(exitBroken, "%s (web admin list shows who there is)", errs.Message(err))
		case errs.Invalid, errs.Conflict:
			return fail(exitBroken, "%s", errMessage(err))
		}
		return fail(exitFailed, "%v", err)
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
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
	fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tREGISTERED\tID")
	for _, p := range people {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Username, p.DisplayName, p.RegisteredAt, p.ID)
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
	id, err := auth.IDByUsername(ctx, db.Read, user)
	if err != nil {
		if errs.Code(err) == errs.NotFound {
			return fail(exitBroken, "there is nobody called %q (web admin list shows who there is)", user)
		}
		return fail(exitFailed, "%v", err)
	}
	token, err := auth.IssueReset(ctx, db.Aux, id, time.Now(), *ttl)
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
