package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
)

// The operator's project commands (`web admin projects|grant|revoke`):
// listing reads the database; granting and revoking take the site's lock
// like the other writing admin commands and act as system.

func adminProjects(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "admin projects", adminCommands[adminIndex("projects")].synopsis)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	db, err := openReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ps, err := access.List(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	people, err := auth.All(ctx, db.Read)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	username := map[string]string{}
	for _, p := range people {
		username[p.ID] = p.Username
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLUG\tNAME\tEVERYONE SIGNED IN\tROLES")
	for _, p := range ps {
		hs, err := access.Holders(ctx, db.Read, p.Slug)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		var roles []string
		for _, h := range hs {
			who := username[h.Person]
			if who == "" {
				who = h.Person
			}
			roles = append(roles, who+" "+h.Role)
		}
		everyone := "no"
		if p.EveryoneMember {
			everyone = "member"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Slug, p.Name, everyone, strings.Join(roles, ", "))
	}
	return tw.Flush()
}

func adminIndex(name string) int {
	for i, c := range adminCommands {
		if c.name == name {
			return i
		}
	}
	panic("no admin command " + name)
}

// adminGrant is `web admin grant USER PROJECT ROLE` (revoke false) or
// `web admin revoke USER PROJECT` (revoke true).
func adminGrant(ctx context.Context, e env, args []string, revoke bool) error {
	name, n := "grant", 3
	if revoke {
		name, n = "revoke", 2
	}
	c := adminCommands[adminIndex(name)]
	fs, dbPath := newFlags(e, "admin "+name, c.synopsis)
	// The arguments may come before, after or between the flags.
	var pos, rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--db" || a == "-db") && i+1 < len(args):
			rest = append(rest, a, args[i+1])
			i++
		case isFlag(a) || a == "-h" || a == "--help":
			rest = append(rest, a)
		default:
			pos = append(pos, a)
		}
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	if len(pos) != n {
		return fail(exitFailed, "want %d arguments: web %s", n, c.synopsis)
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return fail(exitFailed, "%s (stop it first, or use the project's people page)", err.Error())
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	user, project := pos[0], pos[1]
	id, err := auth.IDByUsername(ctx, a.db.Read, user)
	if err == nil {
		s := &access.Service{Writer: a.writer, Types: a.types.access}
		if revoke {
			err = s.Revoke(ctx, access.System, project, id, events.NewID())
		} else {
			err = s.Grant(ctx, access.System, project, id, pos[2], events.NewID())
		}
	}
	if err != nil {
		switch errs.Code(err) {
		case errs.NotFound:
			return fail(exitBroken, "%s (web admin list and web admin projects show what there is)", errs.Message(err))
		case errs.Invalid, errs.Conflict:
			return fail(exitBroken, "%s", errMessage(err))
		}
		return fail(exitFailed, "%v", err)
	}
	if revoke {
		fmt.Fprintf(e.stdout, "%s no longer has a role in %s (project_role_revoked, actor system).\n", user, project)
	} else {
		fmt.Fprintf(e.stdout, "%s is now %s in %s (project_role_granted, actor system).\n", user, pos[2], project)
	}
	return nil
}
