// Command web runs Braid: the site and the commands that replay, verify,
// export and anchor its log. main is wiring only; see run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes shared by every command (see CONTRACT.md).
const (
	exitOK     = 0
	exitBroken = 1 // the braid is broken, or a witness refused
	exitFailed = 2 // could not run
)

// exitError carries an exit code up to run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// env is what every command receives.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// logFormat is --log-format, which newFlags gives every command.
	logFormat *logFormat
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the site (the default)", serve},
		{"replay", "rebuild every projection from the log", replay},
		{"verify", "check the braid and the anchors (--file F: an export, no database)", verify},
		{"export", "write the log as JSON Lines", export},
		{"import", "load a verified export into a new database", importCmd},
		{"migrate-v2", "start a new braid v2 log (erasable payloads) from an old one: --db OLD --out NEW", migrateV2Cmd},
		{"import-issues", "load issues and comments exported from GitHub or Gitea (docs/import.md)", importIssuesCmd},
		{"restore", "restore a replica into a new database, refused unless the braid verifies", restoreCmd},
		{"anchor", "anchor the current head with a witness", anchorCmd},
		{"admin", "operator commands: list people, reset a password, create an admin, set registration", adminCmd},
		{"key", "print the log's verifier key and origin (for checkpoints)", keyCmd},
		{"mirror", "keep a read-only, verified copy of another Braid (URL --db COPY)", mirrorCmd},
		{"erase", "erase a comment, a ticket's text or a person's data from a braid v2 log", eraseCmd},
		{"doctor", "check a deployment: disk, WAL, integrity, key, anchors, verify and export age", doctor},
	}
}

// run is the whole program; tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, logFormat: &logFormat{getenv("BRAID_LOG_FORMAT")}}
	name := "serve"
	if len(args) > 0 && !isFlag(args[0]) {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		}
		fmt.Fprintf(stderr, "web %s: %v\n", name, err)
		var xe *exitError
		if errors.As(err, &xe) {
			return xe.code
		}
		return exitFailed
	}
	fmt.Fprintf(stderr, "web: unknown command %q\n", name)
	usage(stderr)
	return exitFailed
}

func isFlag(s string) bool { return len(s) > 0 && s[0] == '-' && s != "-h" && s != "--help" }

func usage(w io.Writer) {
	fmt.Fprintln(w, "Braid: an event-sourced ticket tracker whose log is a hash braid.")
	fmt.Fprintln(w, "\nUsage: web [command] [flags]   (web CMD --help for a command's flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help     this text")
	fmt.Fprintln(w, "\nEvery command takes --db PATH (env BRAID_DB, default braid.db) and --log-format text|json (env BRAID_LOG_FORMAT).")
}

// newFlags returns a flag set with --db, reporting to e.stderr.
func newFlags(e env, name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("web "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := e.getenv("BRAID_DB")
	if def == "" {
		def = "braid.db"
	}
	db := fs.String("db", def, "path of the SQLite database (env BRAID_DB)")
	if e.logFormat != nil {
		fs.Var(e.logFormat, "log-format", "log lines as text or json (env BRAID_LOG_FORMAT; default text)")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: web %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, db
}

// parse parses args, turning a usage mistake into exit code 2.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(io.Discard)
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	return nil
}
